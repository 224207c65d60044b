"""One trial, framework-neutral: phase 1 (head only), switch, phase 2 (fine-tune), keep the best epoch.

Under a deadline (``--timeout``) the session stops at the next batch once it passes: the epoch cut short
is not counted, and the trial keeps its best whole epoch (restored, scored on test, saved) with
``stopped_by="deadline"``; with no whole epoch it raises ``DeadlineReached``. ``pause_due`` lets a
pruning policy look at a trial inside a long epoch: the session stops, the engine validates the weights
as they are (an ``EpochResult`` with ``fraction < 1``), asks the pruner, and the epoch goes on.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.capabilities import MirroredSession
from automl_tl.errors import TrialFailure
from automl_tl.runtime.deadline import Deadline, DeadlineReached, running_under
from automl_tl.training.linear_head import fit_session_head
from automl_tl.training.metrics import accuracy, balanced_accuracy
from automl_tl.training.resume import KeptEpochs, TrialResume
from automl_tl.types import (
    HEAD_FIT_LBFGS,
    BackboneSpec,
    EpochResult,
    FrameworkAdapter,
    ImageTable,
    Phase,
    TrialConfig,
    TrialSession,
)

DEADLINE = "deadline"  # TrialOutcome.stopped_by of a trial the --timeout cut short


class PruneTrial(Exception):
    """Raised when the pruner stops a trial; carries the epochs seen so far (the last one may be a check
    inside an epoch, ``fraction < 1``) and, under cross-validation, the fold after which it was stopped."""

    def __init__(self, history: list[EpochResult], fold: int | None = None) -> None:
        where = f"after fold {fold + 1}" if fold is not None else (
            f"after epoch {history[-1].epoch + 1}" if history else "")
        super().__init__(f"pruned {where}".strip())
        self.history, self.fold = history, fold


@dataclass
class TrialOutcome:
    """What a finished trial kept: the weights of its best epoch and their scores."""

    val_accuracy: float
    val_balanced_accuracy: float
    best_epoch: int
    best_phase: Phase
    test_accuracy: float
    test_balanced_accuracy: float
    config: TrialConfig  # what the trial really ran: ``effective_config`` of the one asked for
    history: list[EpochResult] = field(default_factory=list)
    seconds: float = 0.0
    # The kept weights' class probabilities, row for row with data.splits["val"] and ["test"]: what
    # ensembles of trials are selected on and judged by (automl_tl.storage.predictions keeps them).
    val_probabilities: np.ndarray | None = None
    test_probabilities: np.ndarray | None = None
    # The table rows ``val_probabilities`` belong to; None: data.splits["val"]. Under cross-validation they are
    # the out-of-fold predictions over train and val (automl_tl.training.cross_validation).
    val_index: np.ndarray | None = None
    # The same weights' probabilities on the left-right mirrored images, row for row with the two above; None
    # where the session cannot mirror (``export --flip auto`` decides on them: automl_tl.deploy.flip).
    val_flip_probabilities: np.ndarray | None = None
    test_flip_probabilities: np.ndarray | None = None
    mirror_seconds: float = 0.0  # what computing them cost, inside ``seconds``
    scoring: dict[str, Any] = field(default_factory=dict)  # how the value was scored, kept with the trial's metrics
    stopped_by: str | None = None  # DEADLINE: the --timeout cut it short, and it kept its best whole epoch
    epochs_run: int = 0  # whole epochs trained (under cross-validation: by each fold)


EpochCallback = Callable[[EpochResult], None]
PruneCheck = Callable[[EpochResult], bool]
StartCallback = Callable[[TrialConfig], None]
ProbabilitiesCallback = Callable[[EpochResult, np.ndarray], None]
PauseDue = Callable[[float], bool]  # called with the trial's training seconds so far: is a check due now?


def predict_mirrored(session: TrialSession, split: str) -> np.ndarray | None:
    """The session's probabilities for ``split`` with every image mirrored left-right, where the session
    offers ``predict_mirrored`` (an optional part of the session contract) and answers it; None where it
    does not (a session answers only when it trains on the mirror, so the prediction costs no new pass)."""
    if not isinstance(session, MirroredSession):
        return None
    found = session.predict_mirrored(split)
    return None if found is None else np.asarray(found, dtype=np.float32)


def effective_config(spec: BackboneSpec, config: TrialConfig) -> TrialConfig:
    """What a trial really runs: a backbone without pretrained weights has nothing to transfer,
    so it trains every block from the first epoch (see ``TrialConfig.from_scratch``); a fitted linear head
    is one head epoch (``TrialConfig.with_fitted_head``)."""
    return config.with_fitted_head(len(spec.blocks)) if spec.pretrained else config.from_scratch()


def phase_schedule(config: TrialConfig, n_blocks: int) -> list[Phase]:
    """The phase of each epoch. Without anything to fine-tune, every epoch trains the head."""
    if not config.finetunes(n_blocks):
        return [Phase.HEAD] * config.epochs
    return [config.phase_at(epoch) for epoch in range(config.epochs)]


def checked_loss(loss: float, epoch: int, phase: Phase) -> float:
    """An epoch's mean training loss; a loss that is not finite fails the trial."""
    if not math.isfinite(loss):
        raise TrialFailure(
            f"the training loss became {loss} in epoch {epoch + 1} ({phase.value} phase); "
            f"the learning rate may be too high for this backbone"
        )
    return loss


class TrainingClock:
    """A trial's training seconds: time in ``train_epoch`` and in validation, not in ``set_phase`` (where
    the activation cache's passes run, shared with later trials)."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._since: float | None = None

    def now(self) -> float:
        """The seconds spent so far, the running stretch included."""
        return self.spent + (time.perf_counter() - self._since if self._since is not None else 0.0)

    def run(self, work: Callable[[], Any]) -> Any:
        """``work()``, its time counted."""
        self._since = time.perf_counter()
        try:
            return work()
        finally:
            self.spent += time.perf_counter() - self._since
            self._since = None


def takes_should_stop(session: TrialSession) -> bool:
    """Whether ``session.train_epoch`` accepts ``should_stop``. A session written before it existed is
    stopped between epochs only."""
    try:
        return len(inspect.signature(session.train_epoch).parameters) > 0
    except (TypeError, ValueError):
        return True


def train_some(session: TrialSession, should_stop: Callable[[], bool] | None, sliced: bool) -> tuple[float, float]:
    """One ``train_epoch`` call: its mean loss and the epoch's progress after it (1.0: the epoch ended)."""
    loss = session.train_epoch(should_stop) if (sliced and should_stop is not None) else session.train_epoch()
    progress = float(getattr(session, "epoch_progress", 1.0)) if sliced else 1.0
    return loss, progress


def head_fitter(session: TrialSession, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Callable[[], float] | None:
    """The head phase of an ``lbfgs`` trial: its linear head fitted to convergence on the training features
    (automl_tl/training/linear_head.py); None for a head trained by epochs of Adam."""
    if config.head_fit != HEAD_FIT_LBFGS:
        return None
    return lambda: fit_session_head(session, data.num_classes, data.class_weights(), config.head_l2,
                                    f"the {spec.framework!r} framework adapter")


class EpochDriver:
    """Runs a trial's epochs through a session under an optional deadline and pause policy, counting the
    training seconds."""

    def __init__(self, session: TrialSession, val_labels: np.ndarray, deadline: Deadline | None = None,
                 pause_due: PauseDue | None = None, fit_head: Callable[[], float] | None = None) -> None:
        self.session, self.val_labels, self.deadline, self.pause_due = session, val_labels, deadline, pause_due
        self.fit_head = fit_head  # a head phase that is one closed-form fit (``head_fitter``), not minibatches
        self.phase: Phase | None = None  # the phase the session was last set to
        self.clock = TrainingClock()
        self.sliced = takes_should_stop(session)

    def deadline_passed(self) -> bool:
        """Whether the deadline (if any) has come."""
        return self.deadline is not None and self.deadline.passed()

    def should_stop(self) -> bool:
        """What the session asks after every optimiser step."""
        return self.deadline_passed() or (self.pause_due is not None and bool(self.pause_due(self.clock.now())))

    def run_epoch(self, epoch: int, phase: Phase, on_check: Callable[[EpochResult], None] | None = None,
                  between: str = "", inside: str = "") -> float:
        """Epoch ``epoch``: the session enters ``phase`` first if it is a new one, then ``train``. A deadline that
        has passed before it (``between``) or inside it (``inside``) raises ``DeadlineReached`` saying when."""
        if self.deadline_passed():
            raise DeadlineReached(f"the --timeout passed {between}")
        if phase is not self.phase:
            self.session.set_phase(phase)
            self.phase = phase
        loss = self.train(epoch, phase, on_check)
        if loss is None:
            raise DeadlineReached(f"the --timeout passed {inside}")
        return loss

    def train(self, epoch: int, phase: Phase, on_check: Callable[[EpochResult], None] | None = None) -> float | None:
        """Train epoch ``epoch`` to its end and return its mean loss; None when the deadline cut it short.
        When a pause is due inside it, the weights are validated as they are and ``on_check`` gets that
        partial result (it may raise ``PruneTrial``); then the epoch goes on."""
        if phase is Phase.HEAD and self.fit_head is not None:
            return checked_loss(self.clock.run(self.fit_head), epoch, phase)
        checks = self.should_stop if (self.deadline is not None or self.pause_due is not None) else None
        start, weighted, done = self.clock.spent, 0.0, 0.0
        while True:
            loss, progress = self.clock.run(lambda: train_some(self.session, checks, self.sliced))
            if progress < 1.0 and progress <= done:
                raise TrialFailure(f"train_epoch returned in epoch {epoch + 1} without training a step (epoch_progress "
                                   f"{progress:.3f}); a call after a stop must continue the epoch")
            weighted, done = weighted + loss * (progress - done), progress
            mean = checked_loss(weighted / done if done > 0 else loss, epoch, phase)
            if progress >= 1.0:
                return mean
            if self.deadline_passed():
                return None
            if on_check is not None:
                probabilities = self.clock.run(lambda: self.session.predict_split("val"))
                on_check(scored(epoch, phase, mean, probabilities, self.val_labels, self.clock.spent - start,
                                self.clock.spent, fraction=progress))


def scored(epoch: int, phase: Phase, loss: float, probabilities: np.ndarray, labels: np.ndarray, seconds: float,
           spent: float, fraction: float = 1.0) -> EpochResult:
    """The ``EpochResult`` of validation ``probabilities`` against ``labels``."""
    return EpochResult(epoch=epoch, phase=phase, train_loss=loss, val_accuracy=accuracy(probabilities, labels),
                       val_balanced_accuracy=balanced_accuracy(probabilities, labels), seconds=seconds,
                       fraction=fraction, spent=spent)


def run_trial(
    adapter: FrameworkAdapter,
    spec: BackboneSpec,
    config: TrialConfig,
    data: ImageTable,
    on_epoch: EpochCallback | None = None,
    should_prune: PruneCheck | None = None,
    save_to: Path | None = None,
    on_start: StartCallback | None = None,
    on_val_probabilities: ProbabilitiesCallback | None = None,
    deadline: Deadline | None = None,
    pause_due: PauseDue | None = None,
    on_val_mirrored: ProbabilitiesCallback | None = None,
    resume: TrialResume | None = None,
) -> TrialOutcome:
    """Train one configuration and return the scores of the weights it keeps.

    The trial runs ``effective_config(spec, config)``; ``on_start`` is called with it before the
    adapter prepares anything, and the outcome records it, so no caller needs to work it out again.
    Validation accuracy is measured after every epoch on one step scale across both
    phases. The weights of the best epoch are snapshotted and restored at the end, so
    the trial's value, its test accuracy and its saved artifact all describe the same
    weights, as checkpointing with early stopping does. ``on_val_probabilities`` receives every epoch's
    validation probabilities (cross-validation pools them across folds).

    ``deadline``: once it passes, the session stops at the next batch; the trial keeps its best whole
    epoch (``stopped_by="deadline"``), or raises ``DeadlineReached`` when no epoch finished.
    ``pause_due(spent)`` is asked after every optimiser step with the training seconds so far (see
    ``TrainingClock``); when it says True inside an epoch, the weights are validated there and the
    partial ``EpochResult`` (``fraction < 1``) goes to ``on_epoch`` and ``should_prune``, then the epoch
    continues. Only whole epochs are kept, become the best, or reach ``on_val_probabilities``.

    The kept weights are also scored on the mirrored validation and test images (``predict_mirrored``), once,
    after the last epoch; ``on_val_mirrored`` instead receives every epoch's mirrored validation
    probabilities (cross-validation pools them as it pools the plain ones).

    ``resume``: where the trial's training state is kept after whole epochs (once the callbacks have seen
    them; ``TrialResume.save`` says how often), and read back when the trial starts; the epochs read back are
    told to ``on_epoch`` and ``should_prune`` again, and only the rest are trained (automl_tl/training/resume.py).
    A resumed trial the deadline stops before it trains a new epoch raises ``DeadlineReached``.
    """
    started = time.perf_counter()
    config = effective_config(spec, config)
    if on_start is not None:
        on_start(config)
    val_labels = data.labels[data.splits["val"]]
    session, kept = started_session(adapter, spec, config, data, resume)
    driver = EpochDriver(session, val_labels, deadline, pause_due, head_fitter(session, spec, config, data))
    history = kept.history
    mirror_epochs = 0.0  # seconds of the per-epoch mirrored validation passes (on_val_mirrored)

    def check(result: EpochResult) -> None:
        if on_epoch is not None:
            on_epoch(result)
        if should_prune is not None and should_prune(result):
            raise PruneTrial([*history, result])

    try:
        resumed_at = replay(kept, driver, on_epoch, should_prune)
        stopped_by: str | None = None
        for epoch, phase in list(enumerate(phase_schedule(config, len(spec.blocks))))[resumed_at:]:
            try:
                epoch_start = driver.clock.spent
                loss = driver.run_epoch(epoch, phase, check, between="between epochs", inside="inside an epoch")
                probabilities = driver.clock.run(lambda: session.predict_split("val"))
                mirror_from = time.perf_counter()
                mirrored_val = None if on_val_mirrored is None else driver.clock.run(lambda: predict_mirrored(session, "val"))
                mirror_epochs += time.perf_counter() - mirror_from
            except DeadlineReached:  # no whole epoch, or none since it resumed: its retry goes on from the same state
                if kept.best is None or len(history) == resumed_at:
                    raise DeadlineReached(f"the --timeout passed before the trial's first whole epoch "
                                          f"({len(history)} of {config.epochs})") from None
                stopped_by = DEADLINE
                break
            result = scored(epoch, phase, loss, probabilities, val_labels, driver.clock.spent - epoch_start,
                            driver.clock.spent)
            kept.add(result, session, probabilities)
            if on_val_probabilities is not None:
                on_val_probabilities(result, probabilities)
            if on_val_mirrored is not None and mirrored_val is not None:
                on_val_mirrored(result, mirrored_val)
            if on_epoch is not None:
                on_epoch(result)
            if should_prune is not None and should_prune(result):
                raise PruneTrial(history)
            if resume is not None:  # after the epoch was told: an interrupt in its callbacks repeats it
                resume.save_if_due(session, kept, config.epochs, deadline.remaining() if deadline is not None else None)
        outcome = kept_outcome(session, data, kept, config, save_to, mirror_flips=on_val_mirrored is None)
        outcome.mirror_seconds += mirror_epochs
        outcome.seconds, outcome.stopped_by = time.perf_counter() - started, stopped_by
        return outcome
    finally:
        session.close()


def started_session(adapter: FrameworkAdapter, spec: BackboneSpec, config: TrialConfig, data: ImageTable,
                    resume: TrialResume | None) -> tuple[TrialSession, KeptEpochs]:
    """The trial's session, brought to the end of the epochs ``resume`` saved (if any), and those epochs. A
    session that failed half-way through reading them is closed and started afresh."""
    session = adapter.start_trial(spec, config, data)
    kept = resume.load(session) if resume is not None else None
    if resume is not None and resume.spoiled:
        session.close()
        session = adapter.start_trial(spec, config, data)
    return session, kept or KeptEpochs()


def replay(kept: KeptEpochs, driver: EpochDriver, on_epoch: EpochCallback | None,
           should_prune: PruneCheck | None) -> int:
    """Tell the callbacks again about the epochs a resumed trial trained before (the pruner reports each to
    the study: the trial's curve stays whole), and set the driver where they left it. Returns how many."""
    if not kept.history:
        return 0
    driver.phase, driver.clock.spent = kept.history[-1].phase, kept.history[-1].spent
    for done, result in enumerate(kept.history):
        if on_epoch is not None:
            on_epoch(result)
        if should_prune is not None and should_prune(result):
            raise PruneTrial(kept.history[: done + 1])
    return len(kept.history)


def kept_outcome(session: TrialSession, data: ImageTable, kept: KeptEpochs, config: TrialConfig,
                 save_to: Path | None, mirror_flips: bool) -> TrialOutcome:
    """The outcome of the best whole epoch: its weights restored, scored on test (and, with ``mirror_flips``, on
    the mirrored validation and test images), and saved into ``save_to``."""
    best = kept.best
    assert best is not None
    with running_under(None):  # restoring and saving the kept weights is never cut short
        session.restore(kept.snapshot)
        test_labels = data.labels[data.splits["test"]]
        test_probabilities = session.predict_split("test")
        mirror_start = time.perf_counter()
        val_flip = predict_mirrored(session, "val") if mirror_flips else None
        test_flip = predict_mirrored(session, "test")
        mirror_seconds = time.perf_counter() - mirror_start
        if save_to is not None:
            session.save(save_to)
    return TrialOutcome(
        val_accuracy=best.val_accuracy,
        val_balanced_accuracy=best.val_balanced_accuracy,
        best_epoch=best.epoch,
        best_phase=best.phase,
        test_accuracy=accuracy(test_probabilities, test_labels),
        test_balanced_accuracy=balanced_accuracy(test_probabilities, test_labels),
        config=config,
        history=kept.history,
        val_probabilities=np.asarray(kept.probabilities, dtype=np.float32),
        test_probabilities=np.asarray(test_probabilities, dtype=np.float32),
        val_flip_probabilities=val_flip,
        test_flip_probabilities=test_flip,
        mirror_seconds=mirror_seconds,
        epochs_run=len(kept.history),
    )
