"""The engine under a deadline (the best whole epoch kept, or DeadlineReached) and with checks inside epochs."""

from __future__ import annotations

import pytest

from automl_tl.runtime.deadline import DeadlineReached
from automl_tl.training.engine import DEADLINE, PruneTrial, run_trial
from tests.support.sample_plugins.stub_plugin import stub_spec
from tests.training.deadline_sessions import BatchDeadline, OneSessionAdapter, SteppedSession
from tests.training.test_engine import ScriptedAdapter, ScriptedSession, config, table


def test_a_deadline_inside_an_epoch_keeps_the_best_whole_epoch_and_stops_at_the_next_batch(tmp_path):
    deadline = BatchDeadline(after=4 * 2 + 1)  # passes in the first batch of epoch 3
    session = SteppedSession(table(), [0.6, 0.9, 0.7, 0.8], batches=4, deadline=deadline)
    outcome = run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), save_to=tmp_path, deadline=deadline)
    assert outcome.stopped_by == DEADLINE and outcome.epochs_run == 2 and len(outcome.history) == 2
    assert len(session.trained) == 4 * 2 + 1, "the session stops at the first batch after the deadline"
    assert outcome.best_epoch == 1 and outcome.val_accuracy == pytest.approx(0.9)
    assert session.epochs == 2 and session.saved == tmp_path, "the best whole epoch is restored and saved"
    assert outcome.test_accuracy == pytest.approx(0.9) and session.closed


def test_a_deadline_before_the_first_whole_epoch_raises_and_saves_nothing(tmp_path):
    deadline = BatchDeadline(after=2)
    session = SteppedSession(table(), [0.6, 0.9, 0.7, 0.8], batches=4, deadline=deadline)
    with pytest.raises(DeadlineReached, match="first whole epoch"):
        run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), save_to=tmp_path / "t", deadline=deadline)
    assert len(session.trained) == 2 and session.saved is None and session.closed


def test_a_deadline_between_epochs_starts_no_other_epoch():
    deadline = BatchDeadline(after=4)  # passes with the last batch of epoch 1
    session = SteppedSession(table(), [0.6, 0.9, 0.7, 0.8], batches=4, deadline=deadline)
    outcome = run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), deadline=deadline)
    assert outcome.stopped_by == DEADLINE and outcome.epochs_run == 1 and len(session.trained) == 4


def test_a_finished_trial_is_not_marked_as_stopped_by_a_deadline_it_never_met():
    deadline = BatchDeadline(after=10_000)
    session = SteppedSession(table(), [0.6, 0.9, 0.7, 0.8], batches=3, deadline=deadline)
    outcome = run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), deadline=deadline)
    assert outcome.stopped_by is None and outcome.epochs_run == 4 and len(session.trained) == 12


def test_a_session_without_should_stop_is_stopped_between_epochs():
    """A plugin written before should_stop existed still works under a deadline: it stops at an epoch's end."""
    session = ScriptedSession([0.5, 0.9, 0.6, 0.7])
    deadline = BatchDeadline(after=1)

    class Counting(ScriptedSession):
        def train_epoch(self):  # no should_stop parameter
            deadline.tick()
            return super().train_epoch()

    session = Counting([0.5, 0.9, 0.6, 0.7])
    outcome = run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), deadline=deadline)
    assert outcome.stopped_by == DEADLINE and outcome.epochs_run == 1 and session.weights == 0


def test_a_pause_checks_inside_the_epoch_which_then_goes_on_with_its_remaining_batches():
    session = SteppedSession(table(), [0.6, 0.9, 0.7, 0.8], batches=4)
    due = iter([False, True, False, False, False, False, True] + [False] * 40)  # after steps 2 and 7
    spent_asked: list[float] = []

    def pause_due(spent: float) -> bool:
        spent_asked.append(spent)
        return next(due)

    seen, judged = [], []
    outcome = run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), on_epoch=seen.append,
                        should_prune=lambda r: judged.append(r) or False, pause_due=pause_due)
    assert session.trained == [(e, b) for e in range(4) for b in range(4)], "every batch of every epoch once, in order"
    checks = [(r.epoch, r.fraction) for r in seen if r.partial]
    assert checks == [(0, 0.5), (1, 0.75)], checks
    assert [(r.epoch, r.fraction) for r in judged] == [(0, 0.5), (0, 1.0), (1, 0.75), (1, 1.0), (2, 1.0), (3, 1.0)]
    assert len(outcome.history) == 4 and all(not r.partial for r in outcome.history), "only whole epochs are kept"
    assert outcome.best_epoch == 1 and spent_asked == sorted(spent_asked)
    spents = [r.spent for r in seen]
    assert spents == sorted(spents) and all(s > 0 for s in spents), "every result carries the seconds spent so far"


def test_a_check_inside_an_epoch_never_becomes_the_kept_best():
    """A partial check that scores higher than every whole epoch is not what the trial keeps."""
    class PartialShines(SteppedSession):
        def predict_split(self, split):
            if self.position:  # mid-epoch weights
                self.script_backup, self.script = self.script, [1.0] * len(self.script)
                try:
                    return super().predict_split(split)
                finally:
                    self.script = self.script_backup
            return super().predict_split(split)

    session = PartialShines(table(), [0.6, 0.7, 0.8, 0.7], batches=4)
    due = iter([True] + [False] * 100)
    outcome = run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), pause_due=lambda s: next(due))
    assert outcome.best_epoch == 2 and outcome.val_accuracy == pytest.approx(0.8)


def test_the_pruner_may_stop_a_trial_at_a_check_inside_an_epoch():
    session = SteppedSession(table(), [0.6, 0.9, 0.7, 0.8], batches=4)
    due = iter([False, False, False, False, True] + [False] * 40)  # after step 1 of epoch 2
    with pytest.raises(PruneTrial) as pruned:
        run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), pause_due=lambda s: next(due),
                  should_prune=lambda r: r.partial)
    assert [(r.epoch, r.fraction) for r in pruned.value.history] == [(0, 1.0), (1, 0.25)]
    assert len(session.trained) == 5 and session.closed


def test_training_seconds_leave_out_the_activation_cache_pass_in_set_phase():
    """``spent`` counts train_epoch and validation, not set_phase (where the cache's passes run)."""
    session = SteppedSession(table(), [0.6, 0.9, 0.7, 0.8], batches=2, batch_seconds=0.01, phase_seconds=0.4)
    asked: list[float] = []
    outcome = run_trial(OneSessionAdapter(lambda data: session), stub_spec(), config(switch=2), table(),
                        pause_due=lambda spent: asked.append(spent) or False)
    total = outcome.history[-1].spent
    assert 0.07 <= total < 0.4, f"two set_phase calls of 0.4 s each must not count: {total:.3f}s"
    assert outcome.seconds > 0.8 > total and asked and max(asked) <= total
    assert [round(r.spent, 6) for r in outcome.history] == sorted(round(r.spent, 6) for r in outcome.history)


def test_a_session_that_returns_without_training_a_step_fails_the_trial_instead_of_looping():
    from automl_tl.errors import TrialFailure

    class Stuck(SteppedSession):
        def train_epoch(self, should_stop=None):
            if self.position == 1:
                return 0.5  # returns at once, without a step: the epoch never moves on
            return super().train_epoch(should_stop)

    session = Stuck(table(), [0.6, 0.9, 0.7, 0.8], batches=4)
    due = iter([True] + [False] * 10)
    with pytest.raises(TrialFailure, match="without training a step"):
        run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), pause_due=lambda s: next(due))
