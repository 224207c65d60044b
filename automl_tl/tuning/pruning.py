"""Pruners. The default judges trials by the seconds they have trained, not by their epochs.

``PhaseAwareHalving`` (``--pruner halving``) is successive halving whose resource is a trial's training
seconds (``EpochResult.spent``: time in ``train_epoch`` and validation, not the shared activation cache's
passes). Rungs are at ``s0 * eta^k`` seconds (eta = 3); ``s0`` is the first whole epoch any trial of the
study trained (smart start makes that a cheap head-only epoch), at least ``MIN_FIRST_RUNG_S``, kept in the
study (``FIRST_RUNG_ATTR``) so every worker and every resume judges at the same seconds.

- A trial is judged when its seconds first reach a rung: at an epoch's end, or at a check inside an epoch
  that the trial runner asks for (``RungClock``, the engine's ``pause_due``), so a trial whose epochs cost
  40x its peers' is judged when it has spent the rung's seconds, not after its epoch.
- Every check is kept in the trial's ``CHECKS_ATTR`` (seconds, value, epochs as a fraction, phase), and a
  trial's value at ``s`` seconds is its best value up to its first check at or past ``s``. Peers at a rung:
  every other COMPLETE, PRUNED or RUNNING trial that reached it, and COMPLETE trials that finished in fewer
  seconds, at their final best. Below the top 1/eta of them (with at least ``min_peers``) it is pruned.
- The end of the head-only phase is a rung of its own (judged against peers at the same seconds): a head
  that is already behind rarely catches up by fine-tuning. The first fine-tuning epoch is never judged,
  neither inside nor at its end: unfreezing blocks often dips accuracy for an epoch before it climbs.

Optuna's intermediate values stay one per whole epoch (step = epochs completed), so ``median``,
``hyperband``, ``none`` and the plots work on epochs as before: only ``halving`` is by seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from automl_tl.errors import UserError
from automl_tl.study_record import CHECKS_ATTR, FIRST_RUNG_ATTR, HEAD_EPOCHS_ATTR
from automl_tl.tuning.pruner_names import DEFAULT_PRUNER as DEFAULT_PRUNER
from automl_tl.tuning.pruner_names import PRUNERS as PRUNERS
from automl_tl.types import EpochResult, Phase

MIN_FIRST_RUNG_S = 1.0  # a trial that ends before it is cheap: judging it would save almost nothing
GRACE = 0.1  # a check inside an epoch is not asked for when the epoch ends within this share of the rung
REDUCTION_FACTOR = 3
MIN_PEERS = 4


@dataclass(frozen=True)
class Check:
    """One look at a trial: after ``spent`` training seconds, ``value`` (validation accuracy) with
    ``epochs`` epochs trained (2.4: four tenths into the third), in ``phase``."""

    spent: float
    value: float
    epochs: float
    phase: str

    @property
    def whole(self) -> bool:
        """At an epoch's end."""
        return float(self.epochs).is_integer()

    def record(self) -> list[Any]:
        """The JSON form kept in ``CHECKS_ATTR``."""
        return [round(self.spent, 3), round(self.value, 4), self.epochs, self.phase]


def check_of(result: EpochResult) -> Check:
    """The check an ``EpochResult`` makes. A check inside an epoch keeps a fractional part in (0, 1) even
    when rounded, so it never reads as an epoch's end."""
    part = 1.0 if not result.partial else min(0.999, max(0.001, math.floor(result.fraction * 1000) / 1000))
    return Check(float(result.spent), float(result.val_accuracy), round(result.epoch + part, 3), result.phase.value)


def checks_of(trial: FrozenTrial) -> list[Check]:
    """A trial's checks, in order (none for a trial from before they were kept)."""
    return [Check(float(s), float(v), float(e), str(p)) for s, v, e, p in trial.user_attrs.get(CHECKS_ATTR, ())
            if v is not None and not math.isnan(float(v))]


def value_at(checks: Sequence[Check], seconds: float) -> float | None:
    """The best value up to the first check at or past ``seconds``; None when none reached them."""
    best: float | None = None
    for check in checks:
        best = check.value if best is None else max(best, check.value)
        if check.spent >= seconds:
            return best
    return None


def rung_index(spent: float, first: float, reduction_factor: int = REDUCTION_FACTOR) -> int:
    """The highest rung ``first * eta^k`` that ``spent`` seconds reach; -1 below the first."""
    if spent < first:
        return -1
    return int(math.floor(math.log(spent / first, reduction_factor) + 1e-9))


def head_epochs_of(trial: FrozenTrial) -> int | None:
    """How many head-only epochs the trial trains before it fine-tunes; None when it has no such switch. The trial
    runner records what really runs; a trial without that record is read from its asked ``switch_epoch``."""
    recorded = trial.user_attrs[HEAD_EPOCHS_ATTR] if HEAD_EPOCHS_ATTR in trial.user_attrs else trial.params.get("switch_epoch")
    return int(recorded) if recorded is not None else None


def in_dip(check: Check, head_epochs: int | None) -> bool:
    """Inside or at the end of the first fine-tuning epoch, after a head phase: never judged."""
    if not head_epochs:
        return False
    return head_epochs < check.epochs <= head_epochs + 1 and check.phase == Phase.FINETUNE.value


def at_switch(check: Check, head_epochs: int | None) -> bool:
    """The end of the head-only phase: a rung of its own."""
    return bool(head_epochs) and check.whole and check.epochs == head_epochs and check.phase == Phase.HEAD.value


def keep_threshold(values: Sequence[float], reduction_factor: int) -> float:
    """The lowest value among the top 1/eta of ``values``: below it, a trial is pruned."""
    ranked = sorted(values, reverse=True)
    keep = max(1, math.ceil(len(ranked) / reduction_factor))
    return ranked[keep - 1]


def first_rung_seconds(study: optuna.Study) -> float | None:
    """The study's first rung in seconds; None before any trial finished an epoch."""
    value = study.user_attrs.get(FIRST_RUNG_ATTR)
    return float(value) if value is not None else None


def settle_first_rung(study: optuna.Study, first_epoch_seconds: float) -> float:
    """The study's first rung: kept as it is, or set from this (the study's first) whole epoch."""
    known = first_rung_seconds(study)
    if known is not None:
        return known
    first = max(MIN_FIRST_RUNG_S, float(first_epoch_seconds))
    study.set_user_attr(FIRST_RUNG_ATTR, round(first, 3))
    return first


class PhaseAwareHalving(BasePruner):
    """Successive halving over training seconds with a rung at each trial's phase switch (see the module's
    docstring). ``first_rung_s``: s0; None reads it from the study (``FIRST_RUNG_ATTR``)."""

    def __init__(self, reduction_factor: int = REDUCTION_FACTOR, min_peers: int = MIN_PEERS,
                 first_rung_s: float | None = None) -> None:
        self.reduction_factor, self.min_peers, self.first_rung_s = reduction_factor, min_peers, first_rung_s

    def first_rung(self, study: optuna.Study) -> float | None:
        """s0: given, or the study's once a trial has set it."""
        if self.first_rung_s is None:
            self.first_rung_s = first_rung_seconds(study)
        return self.first_rung_s

    def judged_at(self, study: optuna.Study, checks: Sequence[Check], head_epochs: int | None) -> float | None:
        """The seconds at which a trial's last check is judged: the rung it first reaches there, or its own
        seconds at the end of its head phase; None when that check is not judged."""
        if not checks:
            return None
        current = checks[-1]
        if in_dip(current, head_epochs):
            return None
        first = self.first_rung(study)
        if first is not None:
            before = rung_index(checks[-2].spent, first, self.reduction_factor) if len(checks) > 1 else -1
            reached = rung_index(current.spent, first, self.reduction_factor)
            if reached > before:
                return float(first * self.reduction_factor ** reached)
        return current.spent if at_switch(current, head_epochs) else None

    def peer_values(self, study: optuna.Study, number: int, seconds: float) -> list[float]:
        """Every other trial's value at ``seconds`` (see the module's docstring)."""
        values = []
        for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)):
            if other.number == number:
                continue
            checks = checks_of(other)
            value = value_at(checks, seconds)
            if value is None and other.state == TrialState.COMPLETE and checks:
                value = max(check.value for check in checks)  # finished in fewer seconds: its final best
            if value is not None:
                values.append(value)
        return values

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        checks = checks_of(trial)
        seconds = self.judged_at(study, checks, head_epochs_of(trial))
        if seconds is None:
            return False
        mine = value_at(checks, seconds)
        peers = self.peer_values(study, trial.number, seconds)
        if mine is None or len(peers) < self.min_peers:
            return False
        return mine < keep_threshold([*peers, mine], self.reduction_factor)


class RungClock:
    """When a trial's next check inside an epoch is due (the engine's ``pause_due``): once its seconds reach
    the next rung, except inside the first fine-tuning epoch (never judged) and in an epoch that will end
    within ``GRACE`` of the rung anyway (its last epoch of the same phase was that short)."""

    def __init__(self, first_rung_s: float | None, head_epochs: int | None,
                 reduction_factor: int = REDUCTION_FACTOR) -> None:
        self.head_epochs, self.reduction_factor = head_epochs, reduction_factor
        self.last_spent, self.whole_epochs = 0.0, 0
        self.epoch_seconds: float | None = None  # the last whole epoch's, in the phase now running
        self.first = first_rung_s
        self.rung = self.next_rung()

    def start_at(self, first_rung_s: float) -> None:
        """Set s0 (known once the study's first epoch has ended)."""
        self.first = first_rung_s
        self.rung = self.next_rung()

    def next_rung(self) -> float | None:
        """The seconds of the first rung past the last check; None before s0 is known."""
        if self.first is None:
            return None
        return float(self.first * self.reduction_factor ** (rung_index(self.last_spent, self.first, self.reduction_factor) + 1))

    def due(self, spent: float) -> bool:
        """Asked after every optimiser step with the trial's training seconds: is a check due now?"""
        rung = self.rung
        if rung is None or spent < rung:
            return False
        if self.head_epochs and self.whole_epochs == self.head_epochs:
            return False  # the first fine-tuning epoch
        return self.epoch_seconds is None or self.epoch_seconds > GRACE * rung

    def checked(self, result: EpochResult) -> None:
        """Told every check, whole epoch or inside one."""
        self.last_spent = max(self.last_spent, float(result.spent))
        if not result.partial:
            self.whole_epochs = result.epoch + 1
            switching = self.head_epochs is not None and self.whole_epochs == self.head_epochs
            self.epoch_seconds = None if switching else float(result.seconds)
        self.rung = self.next_rung()


def make_pruner(name: str, epochs: int) -> BasePruner:
    """A pruner by name. ``halving`` judges by seconds (checks kept by the trial runner); the others by
    epochs: their steps are epochs completed (1..epochs)."""
    if name == "halving":
        return PhaseAwareHalving()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"--pruner {name!r}: choose one of {', '.join(PRUNERS)}.")
