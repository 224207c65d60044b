"""One write-then-rename helper: every file automl-tl replaces goes through ``runtime.atomic_files``."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from automl_tl.runtime.atomic_files import replace_file, replace_text

ROOT = Path(__file__).resolve().parents[2]
HELPER = "automl_tl/runtime/atomic_files.py"
# Renames of whole folders (a staged export, a trial's folder, the sample), not file writes: (module, function).
FOLDER_MOVES = {
    ("automl_tl/runtime/folder_swap.py", "*"),
    ("automl_tl/data/sample.py", "_move_into_place"),
    ("automl_tl/deploy/export_folder.py", "*"),
    ("automl_tl/deploy/export_leftovers.py", "*"),
    ("automl_tl/deploy/flip.py", "keep_one"),
    ("automl_tl/storage/artifacts.py", "finalize"),
    ("automl_tl/storage/mirror.py", "pull_folder"),
    ("automl_tl/training/resume.py", "save"),  # a trial's epoch-NNNN state folder, staged whole
    ("automl_tl/training/fold_resume.py", "save"),  # a cross-validated trial's fold-NNNN folder, staged whole
}


def _renames(path: Path) -> list[tuple[str, int]]:
    """(enclosing function, line) of each ``os.replace``/``os.rename`` and ``Path.replace``/``Path.rename`` call."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                owner = ast.unparse(child.func.value)
                method = child.func.attr
                if owner == "os" and method in ("replace", "rename", "renames"):
                    found.append((function, child.lineno))
                elif method == "rename" or (method == "replace" and len(child.args) == 1 and not child.keywords
                                            and owner != "dataclasses"):
                    found.append((function, child.lineno))  # Path.replace takes one argument, str.replace two
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def test_every_file_is_replaced_through_the_one_helper() -> None:
    files = sorted(p for top in ("automl_tl", "plugins") for p in (ROOT / top).rglob("*.py"))
    offenders = []
    for path in files:
        module = str(path.relative_to(ROOT))
        for function, line in _renames(path) if module != HELPER else []:
            if (module, "*") not in FOLDER_MOVES and (module, function) not in FOLDER_MOVES:
                offenders.append(f"{module}:{line} ({function})")
    assert offenders == [], "replace files with automl_tl.runtime.atomic_files.replace_file"


def test_a_failed_fill_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")

    def fails(partial: Path) -> None:
        partial.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_file(target, fails)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_refusing_check_stops_the_rename(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"

    def refuse() -> None:
        raise ValueError("not ours")

    with pytest.raises(ValueError):
        replace_file(target, lambda partial: partial.write_text("new"), check=refuse)
    assert list(tmp_path.iterdir()) == []


def test_the_partial_name_mode_and_content_are_the_callers(tmp_path: Path) -> None:
    target, partial = tmp_path / "a.txt", tmp_path / ".a.txt.partial"
    seen: list[bool] = []
    replace_file(target, lambda p: (seen.append(p == partial), p.write_bytes(b"x")), partial=partial, mode=0o640,
                 durable=True)
    assert seen == [True] and target.read_bytes() == b"x" and not partial.exists()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    replace_text(target, "two", prefix=".partial-", suffix=".json")
    assert target.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
