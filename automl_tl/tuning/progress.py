"""Live progress of a search with rich: the time used and left, the trials, and where the running trial is.

Three lines. ``time``: the time used and left of ``--timeout`` (a bar that fills as the deadline nears), or
the time elapsed without one; it is read from the deadline each time the display is drawn, so it moves
between trials too. ``trials``: finished trials of the study's budget (the count alone when the budget is
a time, not a number), and the best score. ``trial N``: the running trial's backbone, fold ("fold 2/5",
"refit"), phase, epoch (a fraction of one when a trial is judged mid-epoch), its score so far and its own
timer. rich keeps a task's elapsed time once the task completes, so the trial's line is reset per trial
(``Progress.reset``) and its timer is read from the task's start, never from its finish.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from automl_tl.runtime.notices import NoticeInbox, receiving_notices
from automl_tl.runtime.shown_text import console_text
from automl_tl.tuning.scoring import SCORE
from automl_tl.types import EpochResult, TrialConfig


class BudgetClock(Protocol):
    """What the display needs of the search's deadline (``automl_tl.runtime.deadline.Deadline``)."""

    def spent(self) -> float:
        """Seconds since the command started."""
        ...

    def remaining(self) -> float:
        """Seconds left until the deadline (0 or less once it has passed)."""
        ...


def clock_text(seconds: float) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` from it."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _total(budget: float | None) -> float | None:
    """A trial budget for rich: None (no total, a count alone) when there is none or it is unbounded."""
    return None if budget is None or not math.isfinite(budget) else float(budget)


def _number_or_nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class _TimerColumn(ProgressColumn):
    """The running trial's own timer: the time since its task was last reset, finished or not."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("timer") or task.elapsed is None:
            return Text("")
        return Text(clock_text(task.elapsed), style="progress.elapsed")


class _Bars(Progress):
    """A rich Progress that calls ``before_drawing`` (the time line's update) each time it is drawn."""

    def __init__(self, *columns: ProgressColumn | str, **options: Any) -> None:
        self.before_drawing: Callable[[], None] = lambda: None
        super().__init__(*columns, **options)

    def get_renderables(self) -> Iterable[RenderableType]:
        """Update the time line, then draw as rich does."""
        self.before_drawing()
        yield from super().get_renderables()


@dataclass
class _TrialLine:
    """What the running trial's line says, joined by dots."""

    backbone: str = ""
    stage: str = "preparing"  # "preparing", "fold 2/5", "refit"
    phase: str = ""
    epoch: str = ""
    score: str = ""

    def text(self) -> str:
        return " · ".join(part for part in (self.backbone, self.stage, self.phase, self.epoch, self.score) if part)


class SearchProgress:
    """The search's live display (three bars), or with ``bars=False`` one printed line per trial, which
    then ends with the time used (and left). ``deadline``: the search's ``--timeout``, if any.
    ``score_legend``: the line that says what "score" means, printed once at the start. ``clock``: the
    monotonic clock in seconds (tests pass their own)."""

    def __init__(self, console: Console, total_trials: float | None, finished: int, best: float | None,
                 bars: bool = True, *, deadline: BudgetClock | None = None, score_legend: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console, self.best, self.bars = console, best, bars
        self.deadline, self.score_legend, self.clock = deadline, score_legend, clock
        self.started = clock()
        self.progress = _Bars(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[info]}"),
            _TimerColumn(),
            console=console,
            transient=False,
            get_time=clock,
        )
        self.time_task = self.progress.add_task("time", total=None, count="", info="")
        self.trials_task = self.progress.add_task("trials", total=_total(total_trials), completed=finished,
                                                  count="", info=self._best_text())
        self.trial_task = self.progress.add_task("trial", total=1, completed=0, visible=False, count="", info="")
        self.epoch_task = self.trial_task  # the name the display had before it showed folds
        self._time_row, self._trials_row = self._task(self.time_task), self._task(self.trials_task)
        self._line = _TrialLine()
        self._number: int | None = None
        self._epochs, self._folds = 1, 0
        self._offset = 0  # epochs of the trial's earlier folds, for its bar
        self._update_count()
        self.progress.before_drawing = self._update_time
        self._update_time()
        self.notices = NoticeInbox()  # the caches' notices, as warnings while the display runs
        self._receiving = ExitStack()

    def _task(self, task_id: TaskID) -> Task:
        return next(task for task in self.progress.tasks if task.id == task_id)

    def _best_text(self) -> str:
        return f"best {SCORE} {self.best:.4f}" if self.best is not None else f"best {SCORE} -"

    def __enter__(self) -> SearchProgress:
        self._receiving.enter_context(receiving_notices(self.notices))
        if self.score_legend:
            self.console.print(console_text(self.score_legend), style="dim", highlight=False)
        if self.bars:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bars:
            self.progress.stop()
        self._receiving.close()
        self._say_notices()  # those met after the last trial line, or by a trial that was stopped

    def _say_notices(self) -> None:
        for notice in self.notices.take():  # each said once per search, after the trial that met it
            self.console.print(f"[yellow]note[/] {console_text(notice)}", highlight=False)

    # -- the whole search ------------------------------------------------------------------------------

    def time_text(self) -> str:
        """The time used and left of the deadline, or the time elapsed without one."""
        if self.deadline is None:
            return f"{clock_text(self.clock() - self.started)} elapsed, no --timeout"
        spent, left = self.deadline.spent(), self.deadline.remaining()
        if left <= 0:
            return f"{clock_text(spent)} used, the --timeout has passed: stopping"
        # used rounded down and left rounded up, so that the two add up to the --timeout as given
        return f"{clock_text(spent)} used, {clock_text(math.ceil(left))} left of {clock_text(round(spent + left))}"

    def _update_time(self) -> None:
        task = self._time_row  # set in place: this runs while rich draws the display
        if self.deadline is not None:
            spent, left = self.deadline.spent(), self.deadline.remaining()
            task.total, task.completed = max(spent + left, 1e-9), min(spent, spent + left)
        task.fields["info"] = self.time_text()

    def _update_count(self) -> None:
        task = self._trials_row
        count = f"{int(task.completed)}/{int(task.total)}" if task.total is not None else f"{int(task.completed)}"
        self.progress.update(self.trials_task, count=count)

    def study_finished(self, finished: int, budget: float | None) -> None:
        """The study's count, which other workers' trials move too; ``budget`` None (or infinite) when the
        search is bounded by time alone."""
        self.progress.update(self.trials_task, completed=finished, total=_total(budget))
        self._update_count()

    # -- the running trial -----------------------------------------------------------------------------

    def _show(self, completed: float | None = None) -> None:
        self.progress.update(self.trial_task, completed=completed, info=self._line.text())

    def trial_started(self, number: int, config: TrialConfig) -> None:
        """A new trial: its line starts over, its timer from 0."""
        self._number, self._epochs, self._folds, self._offset = number, max(1, int(config.epochs)), 0, 0
        self._line = _TrialLine(backbone=console_text(config.backbone))
        self.progress.reset(self.trial_task, total=self._epochs, completed=0, visible=True,
                            description=f"trial {number}", count="", info=self._line.text(), timer=True)

    def fold_started(self, number: int, fold: int, folds: int) -> None:
        """Trial ``number`` starts fold ``fold`` (from 0) of ``folds``: its bar spans the folds and the refit."""
        if number != self._number:
            return
        self._folds, self._offset = folds, fold * self._epochs
        self.progress.update(self.trial_task, total=self._epochs * (folds + 1))
        self._line.stage, self._line.phase, self._line.epoch, self._line.score = f"fold {fold + 1}/{folds}", "", "", ""
        self._show(completed=self._offset)

    def refit_started(self, number: int, epochs: int | None = None) -> None:
        """Trial ``number`` retrains its recipe on train and val (for ``epochs`` epochs, when known)."""
        if number != self._number:
            return
        self._offset = self._folds * self._epochs
        if epochs is not None:
            self.progress.update(self.trial_task, total=self._offset + max(1, epochs))
        self._line.stage, self._line.phase, self._line.epoch, self._line.score = "refit", "", "", ""
        self._show(completed=self._offset)

    def epoch_done(self, number: int, config: TrialConfig, result: EpochResult, part: float | None = None) -> None:
        """An epoch of trial ``number`` was scored: all of it, or with ``part`` (between 0 and 1) only that
        share of epoch ``result.epoch``, when the trial is judged mid-epoch."""
        if self._number is not None and number != self._number:
            return
        done = result.epoch + (part if part is not None and 0 < part < 1 else 1)
        epochs = max(1, int(config.epochs))
        if self._line.stage == "preparing":  # training has begun (without folds: no stage to show)
            self._line.stage = ""
        self._line.phase = result.phase.value
        self._line.epoch = f"epoch {done:g}/{epochs}" if part is None or not 0 < part < 1 else f"epoch {done:.1f}/{epochs}"
        score = _number_or_nan(result.val_accuracy)
        self._line.score = f"{SCORE} {score:.4f}" if math.isfinite(score) else ""  # a refit without folds' scores: none
        self._show(completed=self._offset + done)

    def trial_finished(self, number: int, state: str, value: float | None, line: str) -> None:
        """Trial ``number`` ended: its line is printed (with the time, without bars) and the count moves."""
        if value is not None and (self.best is None or value > self.best):
            self.best = value
        if state in ("COMPLETE", "PRUNED"):
            self.progress.advance(self.trials_task)
            self._update_count()
        self.progress.update(self.trials_task, info=self._best_text())
        self.progress.update(self.trial_task, visible=False, timer=False)
        self._number = None
        shown = line if self.bars else f"{line}  [dim]({self.time_text()})[/]"
        self.console.print(shown, highlight=False)
        self._say_notices()
