"""The search's live display: the time used and left, a trial timer that moves, folds and one name for the score."""

from __future__ import annotations

from io import StringIO
from types import SimpleNamespace

from rich.console import Console

from automl_tl.tuning.progress import SearchProgress, clock_text
from automl_tl.types import EpochResult, Phase


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeDeadline:
    """What the display asks of the search's deadline."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.started, self.seconds = clock, clock.now, seconds

    def spent(self) -> float:
        return self.clock.now - self.started

    def remaining(self) -> float:
        return max(0.0, self.started + self.seconds - self.clock.now)


def config(epochs: int = 2) -> SimpleNamespace:
    return SimpleNamespace(backbone="net", epochs=epochs)


def epoch(number: int, score: float = 0.5, phase: Phase = Phase.HEAD) -> EpochResult:
    return EpochResult(epoch=number, phase=phase, train_loss=1.0, val_accuracy=score, val_balanced_accuracy=score,
                       seconds=1.0)


def display(progress: SearchProgress) -> list[str]:
    console = Console(file=StringIO(), width=200, color_system=None)
    console.print(progress.progress.get_renderable())
    return console.file.getvalue().splitlines()


def line_of(progress: SearchProgress, start: str) -> str:
    return next(line for line in display(progress) if line.lstrip().startswith(start))


def test_the_trial_timer_starts_at_zero_for_every_trial_and_moves():
    clock = FakeClock()
    progress = SearchProgress(Console(file=StringIO()), 2, 0, None, bars=False, clock=clock)
    progress.trial_started(0, config())
    clock.now += 20
    progress.epoch_done(0, config(), epoch(0))
    progress.epoch_done(0, config(), epoch(1))  # the bar completes: rich would keep this trial's time from here
    clock.now += 5
    progress.trial_finished(0, "COMPLETE", 0.5, "trial 0 done")
    clock.now += 100
    progress.trial_started(1, config())
    assert line_of(progress, "trial 1").endswith("0:00")
    clock.now += 7
    assert line_of(progress, "trial 1").endswith("0:07")
    progress.epoch_done(1, config(), epoch(0))
    progress.epoch_done(1, config(), epoch(1))
    clock.now += 30  # saving after the last epoch: the timer goes on
    assert line_of(progress, "trial 1").endswith("0:37")


def test_the_time_line_says_what_is_used_and_left_of_the_timeout():
    clock = FakeClock()
    deadline = FakeDeadline(clock, 600)
    progress = SearchProgress(Console(file=StringIO()), 20, 0, None, bars=False, deadline=deadline, clock=clock)
    clock.now += 100
    line = line_of(progress, "time")
    assert "1:40 used, 8:20 left of 10:00" in line and "━" in line
    assert (progress._time_row.completed, progress._time_row.total) == (100, 600)  # the bar is a sixth full
    clock.now += 0.4  # used rounds down, left rounds up: they still add up to the --timeout
    assert "1:40 used, 8:20 left of 10:00" in line_of(progress, "time")
    clock.now += 600
    assert "the --timeout has passed" in line_of(progress, "time")
    unlimited = SearchProgress(Console(file=StringIO()), 20, 0, None, bars=False, clock=clock)
    clock.now += 65
    assert "1:05 elapsed, no --timeout" in line_of(unlimited, "time")


def test_a_budget_of_time_alone_counts_trials_without_a_total():
    progress = SearchProgress(Console(file=StringIO()), None, 3, 0.61, bars=False)
    line = line_of(progress, "trials")
    assert " 3 " in line and "/" not in line and "best score 0.6100" in line
    progress.trial_started(3, config())
    progress.trial_finished(3, "COMPLETE", 0.7, "trial 3 done")
    assert " 4 " in line_of(progress, "trials") and "best score 0.7000" in line_of(progress, "trials")
    progress.study_finished(9, float("inf"))
    assert " 9 " in line_of(progress, "trials") and "/" not in line_of(progress, "trials")
    progress.study_finished(9, 20)
    assert "9/20" in line_of(progress, "trials")


def test_the_trial_line_shows_its_fold_and_the_refit_and_one_bar_spans_them():
    progress = SearchProgress(Console(file=StringIO()), 5, 0, None, bars=False)
    progress.trial_started(4, config(epochs=2))
    assert "net · preparing" in line_of(progress, "trial 4")
    progress.fold_started(4, 1, 5)
    progress.epoch_done(4, config(epochs=2), epoch(0, 0.75))
    assert "net · fold 2/5 · head · epoch 1/2 · score 0.7500" in line_of(progress, "trial 4")
    task = progress._task(progress.trial_task)
    assert (task.completed, task.total) == (3, 12)  # fold 0's two epochs and one of fold 1's, of 5 folds and a refit
    progress.fold_started(4, 4, 5)
    progress.refit_started(4, epochs=1)
    assert "net · refit" in line_of(progress, "trial 4") and "fold" not in line_of(progress, "trial 4")
    progress.epoch_done(4, config(epochs=2), epoch(0, float("nan")))  # a refit reports no score of its own
    assert (task.completed, task.total) == (11, 11) and "score" not in line_of(progress, "trial 4")


def test_a_check_in_the_middle_of_an_epoch_shows_the_fraction():
    progress = SearchProgress(Console(file=StringIO()), 5, 0, None, bars=False)
    progress.trial_started(0, config(epochs=4))
    progress.epoch_done(0, config(epochs=4), epoch(2, 0.6, Phase.FINETUNE), part=0.4)
    assert "finetune · epoch 2.4/4 · score 0.6000" in line_of(progress, "trial 0")
    assert progress._task(progress.trial_task).completed == 2.4


def test_without_bars_each_trial_line_ends_with_the_time_and_the_legend_is_said_once():
    clock = FakeClock()
    console = Console(file=StringIO(), width=200)
    with SearchProgress(console, 5, 0, None, bars=False, deadline=FakeDeadline(clock, 300), clock=clock,
                        score_legend="score: accuracy on the validation split") as progress:
        progress.trial_started(0, config())
        clock.now += 61
        progress.trial_finished(0, "COMPLETE", 0.5, "trial   0  score 0.5000")
    text = console.file.getvalue()
    assert text.count("score: accuracy on the validation split") == 1
    assert "trial   0  score 0.5000  (1:01 used, 3:59 left of 5:00)" in text


def test_clock_text():
    assert [clock_text(s) for s in (0, 59.9, 61, 3599, 3600, 7384)] == ["0:00", "0:59", "1:01", "59:59", "1:00:00",
                                                                          "2:03:04"]
