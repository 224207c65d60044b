"""bench/budget_arms.py: the code each arm runs really is the one imported, trials are told apart by kind, and the
anytime curve exports only the trials that raised the best score."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.budget_arms import ROOT, Code, archived_tree, improving_trials, probe_imports, trial_kind


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True)
    return done.returncode == 0


needs_git = pytest.mark.skipif(not _in_git_checkout(), reason="needs git and this repository's history")


@needs_git
def test_the_archived_commit_is_what_the_before_arm_imports(tmp_path: Path) -> None:
    code = archived_tree("HEAD", tmp_path / "code")
    found = probe_imports(code, tmp_path / "probe")
    assert {"automl_tl", "automl_tl_torch.plugin", "automl_tl_efficientnet_lite.plugin"} <= set(found)
    assert all(Path(origin).is_relative_to(code.tree) for origin in found.values()), found
    assert archived_tree("HEAD", tmp_path / "code") == code  # written once, then reused


def test_a_tree_that_does_not_shadow_the_installed_code_is_refused(tmp_path: Path) -> None:
    empty = Code("before", tmp_path / "empty", "0" * 40)
    empty.tree.mkdir()
    with pytest.raises(SystemExit, match="outside"):
        probe_imports(empty, tmp_path / "probe")


def _trial(params: dict[str, Any] | None = None, **attrs: Any) -> Any:
    return SimpleNamespace(params=params or {}, user_attrs=attrs)


def test_trial_kind_reads_the_new_attribute_first_and_else_the_parameters() -> None:
    assert trial_kind(_trial({"freeze_fraction": 0.5}, kind="head-only")) == "head-only"
    assert trial_kind(_trial({"backbone": "small_cnn", "lr": 1e-3}, pretrained=False)) == "scratch"
    assert trial_kind(_trial({"backbone": "mobilenet_v2", "freeze_fraction": 1.0}, pretrained=True)) == "head-only"
    assert trial_kind(_trial({"backbone": "mobilenet_v2"}, pretrained=True)) == "head-only"  # no freeze point asked
    assert trial_kind(_trial({"freeze_fraction": 0.5}, pretrained=True, frozen_blocks=9, depth=9)) == "head-only"
    assert trial_kind(_trial({"freeze_fraction": 0.5, "switch_epoch": 2}, pretrained=True, frozen_blocks=5,
                             depth=10)) == "fine-tune"


def _row(number: int, value: float | None, finished: float, state: str = "complete") -> dict[str, Any]:
    return {"number": number, "value": value, "finished_s": finished, "state": state}


def test_improving_trials_follow_completion_order_and_keep_the_last_when_capped() -> None:
    rows = [_row(0, 0.5, 30.0), _row(1, 0.7, 10.0), _row(2, 0.6, 20.0), _row(3, 0.9, 40.0, "pruned"),
            _row(4, 0.8, 50.0), _row(5, None, 55.0, "fail"), _row(6, 0.85, 60.0), _row(7, 0.84, 70.0)]
    assert [t["number"] for t in improving_trials(rows, 10)] == [1, 4, 6]
    assert [t["number"] for t in improving_trials(rows, 2)] == [1, 6]
    assert [t["number"] for t in improving_trials(rows, 1)] == [6]
    assert improving_trials([_row(0, None, 5.0, "fail")], 5) == []
