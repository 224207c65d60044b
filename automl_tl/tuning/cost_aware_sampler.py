"""TPE that spends the budget by expected gain per second, not per trial.

TPE draws candidates from the density of good trials and keeps the one with the best acquisition value,
``log l(x) - log g(x)`` (monotone in expected improvement). ``CostAwareTPESampler`` subtracts
``alpha * log(predicted seconds)`` from it: expected improvement per second, with CArBO's cost cooling
(Lee et al., 2020): ``alpha`` is the share of the budget left, 1 at the start, when cheap trials should map
the space, 0 at the end, when only the expected gain counts. A candidate predicted to take longer than the
time left scores ``-inf``, unless every candidate does. Candidates hold only the parameters being sampled
(the relative search space, or one parameter sampled on its own), in Optuna's internal representation: they
are decoded, and completed with the trial's parameters so far and then with typical values. Any failure of the
cost function leaves TPE's own values: the sampler never fails a search that plain TPE would run.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from automl_tl.tuning.cost import TrialCostModel
from automl_tl.tuning.space import config_from_params
from automl_tl.types import BackboneSpec

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingCost:
    """What the sampler needs to weigh candidates by cost, supplied by the search loop.

    ``seconds_of(params)``: the predicted seconds of a trial with these (complete) parameters, None when unknown.
    ``share_left()``: alpha, the share of the budget left (of ``--timeout``, else of the trial budget), 0 to 1.
    ``seconds_left()``: the seconds left before the deadline, None without one.
    ``typical``: values for parameters neither the candidate nor the trial has yet (``typical_params``)."""

    seconds_of: Callable[[Mapping[str, Any]], float | None]
    share_left: Callable[[], float]
    seconds_left: Callable[[], float | None] = lambda: None
    typical: Mapping[str, Any] = field(default_factory=dict)


def typical_params(space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """A middle value of every parameter: a numeric range's middle (geometric on a log scale, on its step),
    a categorical's first choice."""
    typical: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            typical[name] = dist.choices[0]
        elif isinstance(dist, (FloatDistribution, IntDistribution)):
            middle = math.sqrt(dist.low * dist.high) if dist.log else (dist.low + dist.high) / 2
            if dist.step is not None:
                middle = dist.low + round((middle - dist.low) / dist.step) * dist.step
            typical[name] = int(round(middle)) if isinstance(dist, IntDistribution) else float(middle)
    return typical


def budget_share_left(remaining: float, total: float) -> float:
    """``remaining / total`` kept within 0 and 1 (0 for a budget of nothing): CArBO's cooling alpha."""
    return min(1.0, max(0.0, remaining / total)) if total > 0 else 0.0


def params_seconds(model: TrialCostModel, backbone_of: Callable[[str], BackboneSpec], *, epochs: int,
                   image_size: int, batch_size: int = 64) -> Callable[[Mapping[str, Any]], float | None]:
    """``SamplingCost.seconds_of`` from a cost model: the parameters as the trial would run them."""

    def seconds_of(params: Mapping[str, Any]) -> float | None:
        config = config_from_params(params, epochs=epochs, image_size=image_size, batch_size=batch_size)
        prediction = model.predict(backbone_of(config.backbone), config)
        return prediction.seconds if prediction is not None else None

    return seconds_of


def cost_adjusted(values: np.ndarray, costs: np.ndarray, alpha: float, seconds_left: float | None) -> np.ndarray:
    """TPE's acquisition ``values`` less ``alpha * log(costs)``; candidates costing more than ``seconds_left``
    get ``-inf`` unless all do. Costs that are unknown (NaN) count as the median of the known ones (on a log scale)."""
    costs = np.asarray(costs, dtype=np.float64)
    known = np.isfinite(costs) & (costs > 0)
    if not known.any():
        return values
    costs = np.where(known, costs, np.exp(np.median(np.log(costs[known]))))
    adjusted = np.asarray(values, dtype=np.float64) - min(1.0, max(0.0, alpha)) * np.log(costs)
    if seconds_left is not None:
        over = costs > seconds_left
        if not over.all():
            adjusted[over] = -np.inf
    return adjusted


class CostAwareTPESampler(optuna.samplers.TPESampler):
    """``TPESampler`` whose acquisition is expected improvement per predicted second (see the module)."""

    def __init__(self, cost: SamplingCost, **tpe_options: Any) -> None:
        super().__init__(**tpe_options)
        self.cost = cost
        self._context = threading.local()  # the trial and search space of the candidates being scored
        self.adjusted_calls = 0  # acquisitions the cost changed (tests and reports)
        self.fallbacks = 0  # acquisitions left as TPE's because the cost function failed

    def _sample(self, study: optuna.Study, trial: FrozenTrial,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        self._context.current = (trial, search_space)
        try:
            return super()._sample(study, trial, search_space)
        finally:
            self._context.current = None

    def _compute_acquisition_func(self, samples: dict[str, np.ndarray], mpe_below: Any, mpe_above: Any) -> np.ndarray:
        values = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
        current = getattr(self._context, "current", None)
        if current is None:
            return values
        try:
            alpha = float(self.cost.share_left())
            seconds_left = self.cost.seconds_left()
            if alpha <= 0 and seconds_left is None:
                return values
            costs = np.array([self._seconds(params) for params in self._candidates(samples, *current)], np.float64)
            adjusted = cost_adjusted(values, costs, alpha, seconds_left)
        except Exception as exc:  # the cost is advice: TPE's own choice stands
            self.fallbacks += 1
            _LOG.debug("cost-aware sampling fell back to TPE: %s: %s", type(exc).__name__, exc)
            return values
        self.adjusted_calls += 1
        return adjusted

    def _seconds(self, params: Mapping[str, Any]) -> float:
        seconds = self.cost.seconds_of(params)
        return float(seconds) if seconds is not None else math.nan

    def _candidates(self, samples: dict[str, np.ndarray], trial: FrozenTrial,
                    search_space: dict[str, BaseDistribution]) -> list[dict[str, Any]]:
        """Each candidate's parameters as a trial would hold them: decoded, over the trial's parameters so far,
        over typical values."""
        base = {**self.cost.typical, **trial.params}
        count = len(next(iter(samples.values()))) if samples else 0
        return [{**base, **{name: search_space[name].to_external_repr(samples[name][i].item()) for name in samples}}
                for i in range(count)]
