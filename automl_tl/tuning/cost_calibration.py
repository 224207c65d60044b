"""Online calibration of predicted trial costs: per (framework, backbone, kind of trial), the median ratio of the seconds
finished trials really took to the seconds the cost model predicted for them before they ran, each trial weighted
by its predicted seconds: a trial of a tenth of a second is mostly fixed costs, and says little about the next
trial of a minute.

The model's rates (a backward pass as twice the forward, a head step per row) are the same for every machine
and data set; what a busy machine, a slow disk or a framework's overheads add is learnt from the study's own
trials. Only trials that ran to the end count: a pruned trial, or one the deadline stopped, ran less than was
predicted. The ratio is taken against the raw (uncalibrated) prediction, so a correction is never applied twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial, TrialState

from automl_tl.study_record import FRAMEWORK_ATTR, KIND_ATTR, PREDICTED_ATTR, PREDICTED_RAW_ATTR, SECONDS_ATTR, STOPPED_BY_ATTR

BACKBONE_PARAM = "backbone"  # the trial's parameter naming its backbone
RECENT = 20  # the newest ratios per group that count: a machine's load changes during a search
FACTOR_LIMITS = (0.25, 4.0)  # one odd trial (a cold start, a paused machine) cannot move predictions further


def weighted_median(pairs: Sequence[tuple[float, float]]) -> float:
    """The median of the values of ``(value, weight)`` pairs, each counted by its weight: the smallest value at
    which the weights up to it reach half of all of them."""
    ordered = sorted(pairs)
    half, total = sum(weight for _, weight in ordered) / 2, 0.0
    for value, weight in ordered:
        total += weight
        if total >= half:
            return value
    return ordered[-1][0]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


Group = tuple[str, str, str]  # (framework, backbone, kind)


@dataclass
class CostCalibration:
    """Ratios of real to predicted (raw) seconds, each with its predicted seconds as its weight, in the order the
    trials finished, by (framework, backbone, kind). A backbone's own trials correct what its block timings got
    wrong (timed once, perhaps while the machine was busy); its kind's correct the rates of training."""

    ratios: list[tuple[Group, float, float]] = field(default_factory=list)

    @classmethod
    def from_trials(cls, trials: Iterable[FrozenTrial]) -> CostCalibration:
        """The ratios of every completed trial that recorded a prediction, its kind and its seconds, oldest first."""
        calibration = cls()
        for trial in sorted(trials, key=lambda t: t.number):
            attrs = trial.user_attrs
            if trial.state != TrialState.COMPLETE or attrs.get(STOPPED_BY_ATTR):
                continue
            predicted = _number(attrs.get(PREDICTED_RAW_ATTR, attrs.get(PREDICTED_ATTR)))
            seconds = _number(attrs.get(SECONDS_ATTR))
            if predicted is not None and seconds is not None:
                calibration.add(str(attrs.get(FRAMEWORK_ATTR, "")), str(attrs.get(KIND_ATTR, "")), predicted, seconds,
                                backbone=str(trial.params.get(BACKBONE_PARAM, "")))
        return calibration

    def add(self, framework: str, kind: str, predicted_s: float, real_s: float, backbone: str = "") -> None:
        """Record one finished trial: ``real_s`` seconds against ``predicted_s`` raw predicted seconds."""
        if predicted_s > 0 and real_s > 0 and math.isfinite(predicted_s) and math.isfinite(real_s):
            self.ratios.append(((framework, backbone, kind), real_s / predicted_s, predicted_s))

    def factor(self, framework: str, kind: str, backbone: str = "", seconds: float | None = None) -> float:
        """What to multiply a raw prediction by: the weighted median ratio of the newest ``RECENT`` finished trials
        of this framework, backbone and kind; while there is none, of this backbone's trials of any kind, then
        of this kind's trials of any backbone, then of the framework's; 1 without any. Kept within ``FACTOR_LIMITS``.

        ``seconds``: the raw prediction being corrected. The factor is trusted as far as the trials behind it
        cover that many predicted seconds, ``factor ** min(1, their predicted seconds / seconds)``: three head-only
        trials of a second each, mostly fixed costs, say little about a trial of a minute of block passes."""
        for same in ((framework, backbone, kind), (framework, backbone, None), (framework, None, kind),
                     (framework, None, None)):
            pairs = [(ratio, weight) for group, ratio, weight in self.ratios
                     if all(want is None or want == have for want, have in zip(same, group, strict=True))][-RECENT:]
            if pairs:
                low, high = FACTOR_LIMITS
                found = min(high, max(low, weighted_median(pairs)))
                if seconds is None or seconds <= 0:
                    return found
                return float(found ** min(1.0, sum(weight for _, weight in pairs) / seconds))
        return 1.0

    def samples(self, framework: str, kind: str, backbone: str = "") -> int:
        """How many finished trials of this framework, backbone and kind calibrate it."""
        return sum(group == (framework, backbone, kind) for group, _, _ in self.ratios)
