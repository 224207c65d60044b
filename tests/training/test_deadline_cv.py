"""Cross-validation under a deadline: fold 0's model always kept, a score from the completed folds, and the
after_fold hook that may stop the remaining folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl_tl.runtime.deadline import DeadlineReached
from automl_tl.training.cross_validation import run_trial_scored
from automl_tl.training.engine import DEADLINE, PruneTrial
from automl_tl.training.folds import assign_folds, scored_rows
from automl_tl.training.metrics import accuracy
from tests.training.deadline_sessions import BatchDeadline, OneSessionAdapter, SteppedSession
from tests.training.test_cross_validation import CONFIG, SPEC, data  # noqa: F401  (a fixture)

SCRIPT = [0.5, 0.9, 0.7, 0.6]  # accuracy after 1..4 epochs: fold 0 keeps epoch 2
BATCHES = 2
PER_FOLD = len(SCRIPT) * BATCHES  # batches in one fold's trial


def run(data, deadline, tmp_path: Path, folds: int = 3, **options):  # noqa: F811
    adapter = OneSessionAdapter(lambda table: SteppedSession(table, SCRIPT, batches=BATCHES, deadline=deadline))
    outcome = run_trial_scored(adapter, SPEC, CONFIG, data, folds, save_to=tmp_path / "kept", deadline=deadline,
                               **options)
    return adapter, outcome


def test_a_deadline_in_a_later_fold_scores_the_completed_folds_and_keeps_fold_0s_model(data, tmp_path):  # noqa: F811
    deadline = BatchDeadline(after=2 * PER_FOLD + 3)  # inside fold 3 of 3
    adapter, outcome = run(data, deadline, tmp_path)
    assert len(adapter.sessions) == 3, "no refit after a fold cut short"
    assert outcome.stopped_by == DEADLINE and outcome.scoring["cv_folds_done"] == 2
    assert outcome.scoring["cv_refit"] is False and len(outcome.scoring["cv_fold_accuracies"]) == 2
    rows = scored_rows(data)
    folds = assign_folds(data.relpaths, data.labels, rows, 3, 0)
    done = np.sort(np.concatenate(folds[:2]))
    assert np.array_equal(np.sort(outcome.val_index), done), "the score stands on the completed folds' rows"
    assert outcome.val_accuracy == pytest.approx(accuracy(outcome.val_probabilities, data.labels[outcome.val_index]))
    assert outcome.best_epoch == 1 and (tmp_path / "kept" / "epochs.txt").read_text() == "2", "fold 0's best epoch"
    assert outcome.test_accuracy == pytest.approx(0.9, abs=0.05)


def test_a_deadline_in_the_refit_keeps_fold_0s_model_and_every_fold(data, tmp_path):  # noqa: F811
    deadline = BatchDeadline(after=3 * PER_FOLD + 1)
    adapter, outcome = run(data, deadline, tmp_path)
    assert len(adapter.sessions) == 4 and len(adapter.sessions[-1].trained) == 1, "the refit stops at its next batch"
    assert outcome.stopped_by == DEADLINE and outcome.scoring["cv_folds_done"] == 3
    assert outcome.scoring["cv_refit"] is False and np.array_equal(outcome.val_index, scored_rows(data))
    assert (tmp_path / "kept" / "epochs.txt").read_text() == "2"


def test_without_a_deadline_met_the_refit_is_saved_over_fold_0s_model(data, tmp_path):  # noqa: F811
    deadline = BatchDeadline(after=10_000)
    adapter, outcome = run(data, deadline, tmp_path)
    assert outcome.stopped_by is None and outcome.scoring["cv_refit"] is True and outcome.scoring["cv_folds_done"] == 3
    assert adapter.sessions[0].saved == tmp_path / "kept", "under a deadline fold 0's model is saved first"
    assert (tmp_path / "kept" / "epochs.txt").read_text() == "2" and adapter.sessions[-1].saved == tmp_path / "kept"


@pytest.mark.parametrize("after", [3, PER_FOLD - 1])
def test_a_deadline_in_fold_0_gives_no_score(data, tmp_path, after):  # noqa: F811
    with pytest.raises(DeadlineReached, match="fold 1|first whole epoch"):
        run(data, BatchDeadline(after=after), tmp_path)


def test_after_fold_false_prunes_the_trial_and_runs_no_other_fold(data, tmp_path):  # noqa: F811
    asked: list[tuple[int, float]] = []
    with pytest.raises(PruneTrial) as pruned:
        run(data, None, tmp_path, after_fold=lambda fold, score: asked.append((fold, score)) or False)
    assert pruned.value.fold == 0 and asked == [(0, pytest.approx(0.9, abs=0.05))]


def test_after_fold_true_is_asked_after_every_fold(data, tmp_path):  # noqa: F811
    asked: list[int] = []
    adapter, outcome = run(data, None, tmp_path, folds=4, after_fold=lambda fold, score: asked.append(fold) or True)
    assert asked == [0, 1, 2, 3] and len(adapter.sessions) == 5 and outcome.scoring["cv_refit"] is True
