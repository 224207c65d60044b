"""Searches of the stub framework's ``stub_net`` at 16 px, as the search tests run them in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automl_tl.storage.urls import artifacts_dir, storage_url
from automl_tl.tuning.settings import SearchSettings


def stub_settings(data: Path, name: str, trials: int | None, epochs: int, **changes: Any) -> SearchSettings:
    """Settings of study ``name`` (in the test's studies folder) searching ``stub_net`` at 16 px over ``data``,
    with ``changes`` on top."""
    values: dict[str, Any] = dict(study_name=name, storage_url=storage_url(name, None), artifacts=artifacts_dir(name),
                                  trials=trials, epochs=epochs, image_size=16, backbones=["stub_net"],
                                  data_location=str(data))
    values.update(changes)
    return SearchSettings(**values)


def train_every_epoch_by_steps(monkeypatch: pytest.MonkeyPatch, switch_epoch: int = 2) -> None:
    """Make every sampled trial train by minibatch steps (a fitted head would make no ``train`` call), head-only
    for ``switch_epoch`` epochs and fine-tuning after, so that a test can count the epochs each fold trains."""
    import dataclasses

    import automl_tl.tuning.trial_runner as trial_runner

    sampled = trial_runner.config_from_trial
    monkeypatch.setattr(trial_runner, "config_from_trial", lambda *args, **kwargs: dataclasses.replace(
        sampled(*args, **kwargs), head_fit="adam", switch_epoch=switch_epoch))


def epochs_by_fold(monkeypatch: pytest.MonkeyPatch,
                   stops: Callable[[Any, object, int], bool]) -> dict[object, list[int]]:
    """The epochs each fold of a cross-validated trial trains, by fold index (or "refit"), filled in as they train.
    ``stops(driver, fold, epoch)`` is asked before each: it may raise (an interrupt inside the epoch), or answer
    True for the epoch to end untrained and unrecorded (a deadline that passed inside it)."""
    import automl_tl.training.cross_validation as cross_validation
    import automl_tl.training.engine as engine

    seen: dict[object, list[int]] = {}
    current: dict[str, object] = {"fold": None}
    fold_table, refit_table, train = cross_validation.fold_table, cross_validation.refit_table, engine.EpochDriver.train

    def fold_of(data: Any, assignment: Any, j: int) -> Any:
        current["fold"] = j
        return fold_table(data, assignment, j)

    def refit_of(data: Any) -> Any:
        current["fold"] = "refit"
        return refit_table(data)

    def counted(self: Any, epoch: int, phase: Any, on_check: Any = None) -> Any:
        if stops(self, current["fold"], epoch):
            return None
        seen.setdefault(current["fold"], []).append(epoch)
        return train(self, epoch, phase, on_check)

    monkeypatch.setattr(cross_validation, "fold_table", fold_of)
    monkeypatch.setattr(cross_validation, "refit_table", refit_of)
    monkeypatch.setattr(engine.EpochDriver, "train", counted)
    return seen
