"""One table of environment variables: the docs list exactly its names, and code reads them only through it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from automl_tl.runtime import cache_paths, env_vars
from automl_tl.runtime.env_vars import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "user-guide" / "environment.md"  # the docs site's "Caches and environment variables"
SECTION = "## Environment variables"
TEST_SUITE_ONLY = {"AUTOML_TL_FUZZ_SEED"}  # read by the tests, not by the package (docs/development.md)


def docs_section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    assert SECTION in text, f"{PAGE.relative_to(ROOT)} has no {SECTION!r} section"
    body = text.split(SECTION, 1)[1]
    return re.split(r"\n#{1,3} ", body, maxsplit=1)[0]


def test_the_docs_list_exactly_the_variables_of_the_table() -> None:
    rows = re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|", docs_section(), flags=re.MULTILINE)
    assert sorted(rows) == sorted(variable.name for variable in ENVIRONMENT), "the docs' table and env_vars.ENVIRONMENT"
    assert len(rows) == len(set(rows))


def test_each_row_of_the_docs_says_the_default_and_meaning_of_the_table() -> None:
    rows = re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*(.*?)\s*\|\s*(.*?)\s*\|$", docs_section(), flags=re.MULTILINE)
    table = {variable.name: (variable.default, variable.meaning) for variable in ENVIRONMENT}
    assert [name for name, default, meaning in rows if table.get(name) != (default, meaning)] == []


def test_the_readme_and_the_docs_name_no_variable_the_table_lacks() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    named = set(re.findall(r"\bAUTOML_TL_[A-Z0-9_]+\b", "\n".join(page.read_text(encoding="utf-8") for page in pages)))
    assert {"AUTOML_TL_CACHE_DIR", "AUTOML_TL_STORAGE"} <= named
    assert named - TEST_SUITE_ONLY <= {variable.name for variable in ENVIRONMENT}


def test_the_table_is_complete_and_each_row_says_its_default_and_meaning() -> None:
    names = [variable.name for variable in ENVIRONMENT]
    assert len(names) == len(set(names))
    assert {value.name for value in vars(env_vars).values() if isinstance(value, env_vars.EnvVar)} == set(names)
    for variable in ENVIRONMENT:
        assert variable.default.strip() and variable.meaning.strip(), variable.name


def _environment_reads(path: Path) -> list[int]:
    """Lines where ``path`` reads a variable with ``os.environ``/``os.getenv`` (writing or copying it is fine)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        text = ast.unparse(node) if isinstance(node, (ast.Call, ast.Subscript, ast.Compare)) else ""
        if isinstance(node, ast.Call) and re.match(r"os\.(environ\.get|getenv|environ\.pop)\(", text):
            found.append(node.lineno)
        elif isinstance(node, ast.Subscript) and text.startswith("os.environ[") and isinstance(node.ctx, ast.Load):
            found.append(node.lineno)
        elif isinstance(node, ast.Compare) and "in os.environ" in text:
            found.append(node.lineno)
    return found


def test_code_reads_the_environment_only_through_the_table() -> None:
    files = sorted(p for top in ("automl_tl", "plugins") for p in (ROOT / top).rglob("*.py"))
    home = Path(env_vars.__file__).resolve()
    offenders = {str(p.relative_to(ROOT)): lines for p in files if p.resolve() != home and (lines := _environment_reads(p))}
    assert offenders == {}, "read environment variables through automl_tl.runtime.env_vars"


def test_an_empty_value_is_given_as_none_but_raw_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_vars.LOAD_PLUGINS.name, "")
    assert env_vars.LOAD_PLUGINS.raw() == "" and env_vars.LOAD_PLUGINS.given() is None
    assert env_vars.LOAD_PLUGINS.value("x") == ""
    monkeypatch.delenv(env_vars.LOAD_PLUGINS.name)
    assert env_vars.LOAD_PLUGINS.raw() is None and env_vars.LOAD_PLUGINS.value("x") == "x"


def test_the_cache_folders_keep_their_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AUTOML_TL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "xdg" / "automl-tl" / "activations"
    assert cache_paths.cache_root() == root == cache_paths.activations_dir()
    assert cache_paths.decoded_dir() == root / "decoded" and cache_paths.latency_dir() == root / "latency"
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_paths.decoded_dir() == tmp_path / "mine" / "decoded"
    monkeypatch.setenv("AUTOML_TL_DATA_HOME", str(tmp_path / "data"))
    assert cache_paths.data_home() == tmp_path / "data"


def test_no_store_keeps_its_own_idea_of_the_cache_folder() -> None:
    from automl_tl.cache import store
    from automl_tl.data import image_store

    assert not hasattr(image_store, "cache_dir") and not hasattr(store, "default_cache_dir")
    sources = [p for p in (ROOT / "automl_tl").rglob("*.py") if p.resolve() != Path(cache_paths.__file__).resolve()]
    building = [str(p.relative_to(ROOT)) for p in sources if re.search(r'/ "(latency|decoded|activations)"', p.read_text())]
    assert building == [], "ask automl_tl.runtime.cache_paths for the folder instead of building it"
