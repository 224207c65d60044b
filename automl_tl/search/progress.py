"""Live progress of a search with rich: trials, the running trial's phase and epoch, best value."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from automl_tl.cache.activations import take_notices
from automl_tl.runtime.shown_text import console_text
from automl_tl.types import EpochResult, TrialConfig


class SearchProgress:
    """Two bars: the study's finished trials, and the epochs of the running trial."""

    def __init__(self, console: Console, total_trials: int, finished: int, best: float | None, bars: bool = True) -> None:
        self.console = console
        self.best = best
        self.bars = bars
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.trials_task = self.progress.add_task("trials", total=total_trials, completed=finished, info=self._best_text())
        self.epoch_task = self.progress.add_task("epochs", total=1, completed=0, info="", visible=False)

    def _best_text(self) -> str:
        return f"best val acc {self.best:.4f}" if self.best is not None else "best val acc -"

    def __enter__(self) -> SearchProgress:
        if self.bars:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bars:
            self.progress.stop()

    def study_finished(self, finished: int, budget: int) -> None:
        """The study's count, which other workers' trials move too."""
        self.progress.update(self.trials_task, completed=finished, total=budget)

    def trial_started(self, number: int, config: TrialConfig) -> None:
        self.progress.update(
            self.epoch_task,
            description=f"trial {number}",
            total=config.epochs,
            completed=0,
            visible=True,
            info=f"{console_text(config.backbone)} · preparing",
        )

    def epoch_done(self, number: int, config: TrialConfig, result: EpochResult) -> None:
        self.progress.update(
            self.epoch_task,
            completed=result.epoch + 1,
            info=f"{console_text(config.backbone)} · {result.phase.value} · epoch {result.epoch + 1}/{config.epochs} · "
                 f"val acc {result.val_accuracy:.4f}",
        )

    def trial_finished(self, number: int, state: str, value: float | None, line: str) -> None:
        if value is not None and (self.best is None or value > self.best):
            self.best = value
        if state in ("COMPLETE", "PRUNED"):
            self.progress.advance(self.trials_task)
        self.progress.update(self.trials_task, info=self._best_text())
        self.progress.update(self.epoch_task, visible=False)
        self.console.print(line, highlight=False)
        for notice in take_notices():  # said once per process, after the trial that met it
            self.console.print(f"[yellow]note[/] {console_text(notice)}", highlight=False)
