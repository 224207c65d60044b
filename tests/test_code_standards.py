"""Standards the code keeps beside its layers (tests/test_architecture.py): one Python floor that the metadata, the
linter and the type checker agree on, user messages that do not cite the project's issue numbers, and short
functions."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ["automl_tl", "plugins/automl_tl_torch", "plugins/automl_tl_keras", "plugins/efficientnet_lite/src"]

# A function is at most this many lines, from its ``def`` to its last line, docstring and comments included: about
# one screen at the project's 140-column lines, so that a reader sees a whole step at once (docs/decisions.md,
# "Issue 25, part 5: smaller things").
MAX_FUNCTION_LINES = 80
# The functions still over it, each with the length it may not grow past. Split one, and take it off the list.
LONG_FUNCTIONS = {
    "automl_tl/training/cross_validation.py::run_trial_scored": 131,
    "automl_tl/training/engine.py::run_trial": 114,
    "automl_tl/distributed/loop.py::work_on_study": 86,
}
ISSUE_NUMBER = re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE)


def python_files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


def pyproject(path: str) -> dict:
    return tomllib.loads((ROOT / path).read_text())


def floor_of(requires_python: str) -> tuple[int, int]:
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires_python.strip())
    assert match, f"requires-python {requires_python!r}: expected a plain floor such as '>=3.11'"
    return int(match[1]), int(match[2])


def test_the_python_floor_is_the_same_for_the_package_its_plugin_the_linter_and_the_type_checker():
    """mypy checks the standard library's names against ``python_version`` (``datetime.UTC`` is an error under
    3.10), so with all four equal, code that needs a newer Python than ``requires-python`` fails ``make lint``."""
    package = pyproject("pyproject.toml")
    floor = floor_of(package["project"]["requires-python"])
    assert package["tool"]["ruff"]["target-version"] == f"py{floor[0]}{floor[1]}", "ruff's target-version"
    assert package["tool"]["mypy"]["python_version"] == f"{floor[0]}.{floor[1]}", "mypy's python_version"
    plugin = pyproject("plugins/efficientnet_lite/pyproject.toml")
    assert floor_of(plugin["project"]["requires-python"]) == floor, "the example plugin's requires-python"


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the module's, classes' and functions' docstring nodes: written for readers of the code."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def issue_citations(path: Path) -> list[str]:
    """Strings in ``path`` outside docstrings (what users can be shown: messages, help, notes) that cite an issue."""
    tree = ast.parse(path.read_text())
    skip = docstrings(tree)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return [f"{where}:{node.lineno}: ...{node.value[max(match.start() - 40, 0):match.end()]!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and (match := ISSUE_NUMBER.search(node.value))]


def test_no_user_facing_string_cites_an_issue_number():
    found = [hit for path in python_files(*FIRST_PARTY) for hit in issue_citations(path)]
    assert not found, ("a message cites the project's history; say what the user should do instead:\n" + "\n".join(found))


def test_the_citation_check_sees_a_message_and_spares_a_docstring(tmp_path):
    module = tmp_path / "module.py"
    module.write_text('"""Why: docs/decisions.md, issue 24."""\n\n\ndef f():\n    """See issue 16."""\n'
                      '    raise ValueError("trials keep them since automl-tl 0.1 issue 16")\n')
    assert issue_citations(module) == ["module.py:6: ...'trials keep them since automl-tl 0.1 issue 16'"]


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method in ``tree``, nested ones too, with its qualified name."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def function_lengths(paths: list[Path], root: Path | None = None) -> dict[str, int]:
    """``path::qualified name`` of every function in ``paths``: its lines from ``def`` to its last one."""
    return {f"{path.relative_to(root or ROOT)}::{name}": (node.end_lineno or node.lineno) - node.lineno + 1
            for path in paths for name, node in functions(ast.parse(path.read_text()))}


def test_no_function_is_longer_than_the_limit():
    lengths = function_lengths(python_files(*FIRST_PARTY))
    too_long = {name: n for name, n in lengths.items() if n > LONG_FUNCTIONS.get(name, MAX_FUNCTION_LINES)}
    assert not too_long, (f"split these into named steps of at most {MAX_FUNCTION_LINES} lines "
                          f"(or, for a listed one, at least do not let it grow): {too_long}")
    settled = [name for name in LONG_FUNCTIONS if lengths.get(name, 0) <= MAX_FUNCTION_LINES]
    assert not settled, f"these fit in {MAX_FUNCTION_LINES} lines now (or are gone): take them off LONG_FUNCTIONS: {settled}"


def test_the_length_check_counts_methods_and_nested_functions_from_def_to_the_last_line(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("class A:\n    @staticmethod\n    def f():\n        def g():\n            return 1\n\n"
                      "        return g\n\n\ndef h():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    lengths = function_lengths([module], tmp_path)
    assert lengths == {"module.py::A.f": 5, "module.py::A.f.g": 2, "module.py::h": MAX_FUNCTION_LINES + 1}, lengths
