"""The docs site builds strictly, a broken link or anchor fails it, its code examples run, and the pages that
describe the code (the layers, the public surface, the capabilities) name what the code has."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from automl_tl import capabilities
from automl_tl.plugin.public import PUBLIC_API
from tests.docs.examples import Example, all_examples, plugin_files, runnable, unmarked
from tests.test_architecture import LAYERS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = all_examples(DOCS)
FRAMEWORK_PACKAGES = {"automl_tl_torch": "torch", "automl_tl_keras": "keras"}


def build(config_folder: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of the site configured in ``config_folder``, into ``site``."""
    # No skip when mkdocs is missing: `make setup` installs it (the dev extra), and a docs check that quietly
    # skipped would let a broken link through.
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)]
    return subprocess.run(command, cwd=config_folder, capture_output=True, text=True, timeout=300)


def test_the_site_builds_strictly(tmp_path):
    result = build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "plugins" / "reference" / "index.html").read_text().count('id="automl_tl.hookspecs.') >= 3


def test_the_config_turns_every_broken_reference_into_a_warning():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["validation"] == {"omitted_files": "warn", "absolute_links": "warn", "unrecognized_links": "warn",
                                    "anchors": "warn"}
    assert "--strict" in (ROOT / "Makefile").read_text().split("\ndocs:", 1)[1].split("\n\n", 1)[0]


@pytest.mark.parametrize(("planted", "says"), [
    ("[the layers](architecture.md#no-such-layer)", "does not contain an anchor '#no-such-layer'"),
    ("[a page](user-guide/no-such-page.md)", "'user-guide/no-such-page.md', but the target is not found"),
    ("[a reference](plugins/reference.md#automl_tl.no_such_module)", "#automl_tl.no_such_module"),
])
def test_a_broken_internal_link_fails_the_build(tmp_path, planted, says):
    copy = tmp_path / "copy"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    for package in ("automl_tl", "plugins"):  # mkdocstrings reads the sources from beside mkdocs.yml
        (copy / package).symlink_to(ROOT / package)
    index = copy / "docs" / "index.md"
    index.write_text(index.read_text() + f"\nSee {planted}.\n")
    result = build(copy, tmp_path / "site")
    assert result.returncode != 0 and says in result.stderr, result.stderr


def test_every_example_is_run_or_skipped_with_a_reason():
    assert unmarked(EXAMPLES) == [], "mark each block with <!-- docs-test: KIND --> (tests/docs/examples.py)"
    kinds = {example.kind for example in EXAMPLES}
    assert {"run", "plugin", "conformance", "skip", "toml", "yaml"} <= kinds


def test_the_plugin_examples_include_one_of_each_kind_of_plugin():
    files = plugin_files(EXAMPLES)
    assert {"my_backbones/plugin.py", "my_keras_backbones.py", "my_framework.py", "list_dataset.py"} <= set(files)
    conformance = {example.options["plugin"] for example in EXAMPLES if example.kind == "conformance"}
    assert conformance <= set(files) and "my_framework.py" in conformance


@pytest.fixture
def example_folder(tmp_path, monkeypatch):
    """A working folder holding every plugin example as its file, for examples that refer to them by name."""
    for name, code in plugin_files(EXAMPLES).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _needs_frameworks(code: str) -> None:
    for package, framework in FRAMEWORK_PACKAGES.items():
        if package in code:
            pytest.importorskip(framework, reason=f"the example imports {package}, and {framework} is not installed")


def _registered_by(plugins, owner: str) -> list[str]:
    return [f"{registry.kind} {name}" for registry in (plugins.frameworks, plugins.backbones, plugins.datasets)
            for name in registry if registry.owner(name) == owner]


def _run_plugin(example: Example, folder: Path) -> None:
    from automl_tl.plugin.manager import load_plugins

    plugins = load_plugins(plugin_files=[folder / example.options["file"]], entry_points=False)
    owner = f"file:{Path(example.options['file']).name}"
    assert plugins.failures == {} and _registered_by(plugins, owner), f"{example.name} registered nothing"
    for name in re.findall(r'name="(\w+)"', example.code):  # every backbone it declares is found by its name
        assert plugins.backbones.owner(name) == owner


def _run_conformance(example: Example, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import automl_tl.plugin
    from automl_tl.testing import AdapterConformance, suite_environment

    real = automl_tl.plugin.load_plugins
    plugin = str(folder / example.options["plugin"])
    # The example is written for an installed plugin (or names its file): either way it must find this one.
    def finding_the_example(plugin_files=(), **options):
        return real(plugin_files=list(plugin_files) or [plugin], **options)

    monkeypatch.setattr(automl_tl.plugin, "load_plugins", finding_the_example)
    namespace: dict = {"__name__": "docs_example"}
    exec(compile(example.code, example.name, "exec"), namespace)
    suites = [v for k, v in namespace.items() if k.startswith("Test") and isinstance(v, type) and issubclass(v, AdapterConformance)]
    assert len(suites) == 1, f"{example.name} defines no conformance class named Test..."
    with suite_environment(folder / "conformance-cache"):
        suites[0]().test_adapter_declares_itself()


@pytest.mark.parametrize("example", runnable(EXAMPLES), ids=lambda example: example.name)
def test_the_example_runs(example, example_folder, monkeypatch):
    if example.kind == "skip":
        pytest.skip(f"marked skip in the docs: {example.reason}")
    _needs_frameworks(example.code)
    if example.kind == "toml":
        assert tomllib.loads(example.code)
    elif example.kind == "yaml":
        assert yaml.safe_load(example.code)
    elif example.kind == "plugin":
        _run_plugin(example, example_folder)
    elif example.kind == "conformance":
        _run_conformance(example, example_folder, monkeypatch)
    else:
        exec(compile(example.code, example.name, "exec"), {"__name__": "docs_example"})


def test_the_architecture_page_lists_the_tested_layers_in_order():
    items = re.findall(r"^\d+\. (.*(?:\n {3,}.*)*)", (DOCS / "architecture.md").read_text(), flags=re.MULTILINE)
    assert len(items) == len(LAYERS)
    for item, names in zip(items, LAYERS):
        assert [name for name in sorted(names) if f"`{name}" not in item] == [], item


def test_the_public_surface_page_names_every_public_module_and_name():
    page = (DOCS / "plugins" / "public-api.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w.]+)` \|.*$", page, flags=re.MULTILINE)}
    assert set(rows) == set(PUBLIC_API)
    for module, names in PUBLIC_API.items():
        named = re.split(r" \| ", rows[module])[1]
        assert named == "all" if names is None else all(f"`{name}`" in named for name in names), rows[module]


def test_the_api_reference_shows_exactly_the_public_surface():
    page = (DOCS / "plugins" / "reference.md").read_text()
    shown = dict(re.findall(r"^::: ([\w.]+)\n(?:    options:\n      members: \[(.*)\]\n)?", page, flags=re.MULTILINE))
    assert set(shown) == set(PUBLIC_API)
    for module, names in PUBLIC_API.items():
        assert (sorted(shown[module].split(", ")) if shown[module] else None) == (sorted(names) if names else None), module
        importlib.import_module(module)


def test_every_optional_capability_is_in_the_framework_adapter_guide():
    page = (DOCS / "plugins" / "framework-adapter.md").read_text()
    names = [name for name in capabilities.__all__ if name[0].isupper() and not name.isupper()]
    assert names and [name for name in names if f"| `{name}`" not in page] == []


def test_the_readme_is_short_keeps_the_two_commands_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    assert "make search   # set up .venv, then a real search on the bundled sample and an ONNX export\n" in readme
    assert "make test     # set up .venv, then run the test suite (what CI runs)\n" in readme
    targets = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", readme)
    assert targets and [target for target in targets if not (ROOT / target).exists()] == []
