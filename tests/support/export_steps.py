"""The folder steps of an export, without a model: for tests that stop an export at each step.

``python -m tests.support.export_steps OUT TAG STEP MODE`` exports a fake model tagged TAG to OUT and
SIGKILLs itself just before its STEP-th file-system change (0: never); MODE ``fallback`` makes the
atomic exchange unavailable, so the swap takes two renames."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl_tl.deploy.export_folder import MARKER_FILE, check_replaceable, finish_export, staging_folder, written_entries
from automl_tl.deploy.export_leftovers import clear_leftovers
from automl_tl.runtime import folder_swap

# The file-system calls an export makes to create, move and delete its folders.
MUTATING = ("rename", "replace", "unlink", "rmdir", "mkdir")


def fake_export(out_dir: Path, tag: str, overwrite: bool = True) -> None:
    """What ``write_export`` does to the folders, with a small fake model tagged ``tag``."""
    clear_leftovers(out_dir)
    check_replaceable(out_dir, overwrite)
    with staging_folder(out_dir) as staging:
        (staging / "model").mkdir()
        (staging / "model" / "weights.bin").write_text(tag)
        (staging / "model" / "graph.bin").write_text(tag * 3)
        (staging / "labels.json").write_text(json.dumps(["a", "b"]))
        (staging / "metadata.json").write_text(json.dumps({"model_file": "model", "tag": tag}))
        (staging / "preprocessing.json").write_text("{}")
        finish_export(staging, out_dir, overwrite)


def export_tag(folder: Path) -> str | None:
    """The tag of the complete export in ``folder``; None when it is not one (missing, partial, foreign)."""
    if not folder.is_dir() or written_entries(folder) != {p.relative_to(folder).as_posix() for p in folder.rglob("*")}:
        return None
    if not (folder / MARKER_FILE).is_file():
        return None
    tag = json.loads((folder / "metadata.json").read_text())["tag"]
    complete = (folder / "model" / "weights.bin").read_text() == tag and (folder / "model" / "graph.bin").read_text() == tag * 3
    return str(tag) if complete else None


def stop_at_step(step: int, stop: Callable[[], Any], after: bool = False,
                 patch: Callable[[Any, str, Any], None] = setattr) -> list[str]:
    """From now on, call ``stop`` just before (``after``: just after) the ``step``-th file-system change;
    returns the list the calls are recorded in. ``patch`` installs the counting wrappers (a test passes
    ``monkeypatch.setattr`` so that they go again)."""
    calls: list[str] = []

    def counted(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            if len(calls) == step and not after:
                stop()
            try:
                return real(*args, **kwargs)
            finally:  # also after a call that failed (a mkdir of a folder that exists)
                if len(calls) == step and after:
                    stop()
        return call

    for name in MUTATING:
        patch(os, name, counted(name, getattr(os, name)))
    patch(folder_swap, "exchange", counted("exchange", folder_swap.exchange))
    return calls


def main() -> None:
    out, tag, step, mode = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if mode == "fallback":
        folder_swap.exchange = lambda first, second: False
    assert shutil.rmtree.avoids_symlink_attacks  # the fd-based rmtree: its unlinks are counted too
    calls = stop_at_step(step, lambda: os.kill(os.getpid(), signal.SIGKILL))
    fake_export(out, tag)
    print(len(calls))


if __name__ == "__main__":
    main()
