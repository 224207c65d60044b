"""Searches of the stub framework's ``stub_net`` at 16 px, as the search tests run them in-process."""

from __future__ import annotations

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
