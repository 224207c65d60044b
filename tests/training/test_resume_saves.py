"""When a trial's training state is saved (``TrialResume.save_if_due``): the first time, then only once the training
since the last save is 1/SAVE_SHARE times that save's cost; always when the deadline is near; never after the last
planned epoch. The saves are counted and their cost faked (each takes 0.5 s on a fake clock)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import automl_tl.training.resume as resume_module
from automl_tl.training.resume import KeptEpochs, TrialResume
from automl_tl.types import EpochResult, Phase


@pytest.fixture
def saves(monkeypatch, tmp_path):
    """A TrialResume whose saves take 0.5 s each on a fake clock, and the epochs (1-based) it saved after."""
    clock, saved = {"now": 0.0}, []

    def save(self, session, kept):
        clock["now"] += 0.5
        saved.append(len(kept.history))

    monkeypatch.setattr(resume_module, "time", SimpleNamespace(perf_counter=lambda: clock["now"]))
    monkeypatch.setattr(TrialResume, "save", save)
    return TrialResume(tmp_path, {"t": 0}), saved


def epochs(resume, count, seconds, planned, left=lambda epoch: None):
    """``count`` epochs of ``seconds`` training seconds each, every one offered to ``save_if_due``."""
    kept = KeptEpochs()
    for epoch in range(count):
        kept.history.append(EpochResult(epoch, Phase.HEAD, 0.1, 0.5, 0.5, seconds, spent=seconds * (epoch + 1)))
        resume.save_if_due(None, kept, planned, left(epoch))


def test_saves_wait_until_their_cost_is_a_small_share_of_the_training(saves):
    resume, saved = saves
    assert resume_module.SAVE_SHARE == 0.02  # a 0.5 s save waits for 25 s of training
    epochs(resume, 30, 10.0, planned=40)
    assert saved == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28], "the first epoch, then every 25 s or more of training"


def test_a_long_epoch_is_saved_every_time_and_the_last_planned_epoch_never(saves):
    resume, saved = saves
    epochs(resume, 6, 60.0, planned=6)
    assert saved == [1, 2, 3, 4, 5]


def test_the_epoch_before_a_near_deadline_is_saved(saves):
    resume, saved = saves
    # 10 s epochs; the deadline 15 s after epoch 6 ends: epoch 7 may not finish, so epoch 6 is kept
    epochs(resume, 7, 10.0, planned=12, left=lambda epoch: 1000.0 if epoch < 5 else 15.0)
    assert saved == [1, 4, 6, 7]
