"""A running trial's side of pruning: its checks kept, the pruner asked, checks inside an epoch asked for at
the rungs' seconds, and, under ``--cv``, fold 0 deciding whether the other folds run.

The trial runner makes one ``TrialPruning`` per trial and hands its methods to the engine
(``should_prune``, ``pause_due``, ``on_start`` through ``started``) and to cross-validation
(``after_fold``). Whatever the pruner, every whole epoch is reported to Optuna (step = epochs completed)
and every check is kept in ``CHECKS_ATTR``; the by-seconds parts (checks inside an epoch, judging at
them, halving across folds) apply only under ``PhaseAwareHalving``, ``--pruner halving``.
"""

from __future__ import annotations

import optuna

from automl_tl.study_record import CHECKS_ATTR, FOLD_ZERO_ATTR, HEAD_EPOCHS_ATTR
from automl_tl.training.engine import PauseDue
from automl_tl.tuning.fold_halving import fold_zero_record, runs_other_folds
from automl_tl.tuning.pruning import Check, PhaseAwareHalving, RungClock, check_of, first_rung_seconds, settle_first_rung
from automl_tl.types import EpochResult, TrialConfig

WRITE_EVERY_S = 1.0  # training seconds between writes of the checks (each a database write) besides judged ones


class TrialPruning:
    """Pruning hooks for one trial of kind ``kind`` (``trial_kind``), scored on ``folds`` folds (0 or 1:
    on the validation split)."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial, kind: str, folds: int) -> None:
        self.study, self.trial, self.kind, self.folds = study, trial, kind, folds
        self.halving = study.pruner if isinstance(study.pruner, PhaseAwareHalving) else None
        self.clock = RungClock(first_rung_seconds(study), None) if self.halving is not None else None
        self.checks: list[Check] = []
        self.written = 0  # how many of ``checks`` the trial's attribute holds
        self.head_epochs: int | None = None

    @property
    def pause_due(self) -> PauseDue | None:
        """The engine's ``pause_due``: a check is due when the trial's seconds reach the next rung (None:
        checks at epoch ends only)."""
        return self.clock.due if self.clock is not None else None

    def started(self, effective: TrialConfig, n_blocks: int) -> None:
        """Told what the trial really runs: how many head epochs it trains before it fine-tunes (its switch rung,
        and the dip after it), or None (head-only, from scratch)."""
        if effective.finetunes(n_blocks) and effective.switch_epoch > 0:
            self.head_epochs = effective.switch_epoch
        self.trial.set_user_attr(HEAD_EPOCHS_ATTR, self.head_epochs)
        if self.clock is not None:
            self.clock.head_epochs = self.head_epochs

    def should_prune(self, result: EpochResult) -> bool:
        """The engine's ``should_prune``: keep the check, report a whole epoch, and ask the pruner."""
        self.checks.append(check_of(result))
        if self.clock is not None:
            if not result.partial and self.clock.first is None:
                self.clock.start_at(settle_first_rung(self.study, result.spent))
            self.clock.checked(result)
        judged = self.halving is not None and self.halving.judged_at(self.study, self.checks, self.head_epochs) is not None
        last_written = self.checks[self.written - 1].spent if self.written else 0.0
        if judged or result.spent - last_written >= WRITE_EVERY_S:
            self.flush()  # before the pruner reads them, and for peers in other workers
        if not result.partial:
            self.trial.report(result.val_accuracy, step=result.epoch + 1)  # steps are epochs completed
        if self.halving is not None:
            return judged and self.trial.should_prune()
        return not result.partial and self.trial.should_prune()

    def flush(self) -> None:
        """Write the checks not yet in the trial's attribute."""
        if self.written < len(self.checks):
            self.trial.set_user_attr(CHECKS_ATTR, [check.record() for check in self.checks])
            self.written = len(self.checks)

    def after_fold(self, fold: int, accuracy: float) -> bool:
        """Cross-validation's ``after_fold``: after fold 0, keep its accuracy and say whether the other folds
        run (see ``fold_halving``); later folds always go on."""
        if fold != 0:
            return True
        self.flush()
        self.trial.set_user_attr(FOLD_ZERO_ATTR, fold_zero_record(self.folds, accuracy))
        if self.halving is None:
            return True
        return runs_other_folds(self.study, self.trial.number, self.kind, self.folds, accuracy,
                                self.halving.reduction_factor, self.halving.min_peers)
