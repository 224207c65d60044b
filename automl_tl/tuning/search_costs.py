"""The cost model of one search process: built once, recalibrated from the study before each trial, asked
before a trial trains for the largest version of it that fits the time left, and lent to the sampler.

Block timings are measured the first time a backbone is priced (then read from the file beside the latency
cache); that measuring is charged to the search's time ledger as "block timing", not to the trial that
happened to ask for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from automl_tl.plugin.manager import Plugins
from automl_tl.runtime.deadline import Deadline
from automl_tl.runtime.time_ledger import BLOCK_TIMING, charged
from automl_tl.study_record import SHRUNK_ATTR
from automl_tl.tuning.block_seconds import BlockSecondsSource
from automl_tl.tuning.budget import FINISHED_STATES, study_budget
from automl_tl.tuning.cached_prefixes import AdapterCacheState
from automl_tl.tuning.cost import DataSizes, FitPlan, TrialCostModel, shrunk_versions, trial_kind
from automl_tl.tuning.cost_aware_sampler import SamplingCost, budget_share_left, params_seconds, typical_params
from automl_tl.tuning.cost_calibration import CostCalibration
from automl_tl.tuning.settings import SearchSettings
from automl_tl.types import BackboneSpec, ImageTable, TrialConfig

_LOG = logging.getLogger(__name__)


class SearchCosts:
    """What trials cost on this search's data, machine and scoring (``settings.cv_folds``), and how much of the
    budget is left: of the deadline's seconds (``--timeout``), else of the study's count of trials."""

    def __init__(self, settings: SearchSettings, plugins: Plugins, table: ImageTable,
                 deadline: Deadline | None) -> None:
        self.settings, self.deadline, self.backbone_of = settings, deadline, plugins.backbone
        self.timings = BlockSecondsSource(plugins.framework)
        self.model = TrialCostModel(self._block_seconds, DataSizes.of(table), settings.cv_folds,
                                    AdapterCacheState(plugins.framework, table), CostCalibration())
        self._trials_share = 1.0  # share of the study's count of trials left, as of the last refresh

    def _block_seconds(self, spec: BackboneSpec, image_size: int) -> Sequence[float] | None:
        key = (spec.name, int(image_size))
        if key in self.timings.known:  # looked up already in this process (None: this backbone cannot be timed)
            return self.timings.known[key]
        with charged(BLOCK_TIMING):  # measured once per backbone, size and machine, or read from the file
            return self.timings(spec, image_size)

    def refresh(self, study: optuna.Study) -> None:
        """Recalibrate from the study's finished trials (this worker's and every other's) and count what is left."""
        trials = study.get_trials(deepcopy=False)
        self.model.calibration = CostCalibration.from_trials(trials)
        budget = study_budget(study, self.settings.trials)
        if budget:
            self._trials_share = budget_share_left(budget - sum(t.state in FINISHED_STATES for t in trials), budget)

    def seconds_left(self) -> float | None:
        """Seconds left before the deadline; None without one."""
        return self.deadline.remaining() if self.deadline is not None else None

    def share_left(self) -> float:
        """The share of the budget left, 0 to 1: the cost-aware sampler's cooling (``CostAwareTPESampler``)."""
        if self.deadline is not None:
            return budget_share_left(self.deadline.remaining(), self.deadline.seconds)
        return self._trials_share

    def sampling(self, space: Mapping[str, BaseDistribution]) -> SamplingCost:
        """The sampler's view of the model: a candidate's predicted seconds, the share and seconds left."""
        seconds_of = params_seconds(self.model, self.backbone_of, epochs=self.settings.epochs,
                                    image_size=self.settings.image_size)
        return SamplingCost(seconds_of, share_left=self.share_left, seconds_left=self.seconds_left,
                            typical=typical_params(space))

    def plan(self, spec: BackboneSpec, config: TrialConfig) -> FitPlan | None:
        """What to run of the trial: as asked, or the largest smaller version predicted to finish in the time
        left (``TrialCostModel.fit_to``); None when not even its smallest version does. A prediction is advice:
        should the model fail, the trial runs as asked."""
        try:
            return self.model.fit_to(spec, config, self.seconds_left())
        except Exception as exc:
            _LOG.debug("the cost model failed; the trial runs as asked: %s: %s", type(exc).__name__, exc)
            return FitPlan(config, self.model.folds, None)

    def attrs(self, spec: BackboneSpec, plan: FitPlan) -> dict[str, Any]:
        """The trial attributes that record the plan: its predictions (calibrated and raw) and kind, and, when it
        was shrunk, what was cut (``SHRUNK_ATTR``)."""
        prediction = self.model.predict(spec, plan.config, plan.folds)
        attrs: dict[str, Any] = dict(prediction.attrs()) if prediction is not None else {}
        if plan.shrunk:
            attrs[SHRUNK_ATTR] = plan.reason
        return attrs

    def too_big(self, spec: BackboneSpec, config: TrialConfig) -> str:
        """Why a trial that fits nowhere is not started: its smallest version's prediction against the time left."""
        versions = shrunk_versions(spec, config, self.model.folds)
        smallest_config, folds = versions[-1] if versions else (config, self.model.folds)
        smallest = self.model.predict(spec, smallest_config, folds)
        cost = f"{seconds_text(smallest.seconds)}" if smallest is not None else "more"
        left = self.seconds_left() or 0.0
        shape = [f"{smallest_config.epochs} epoch{'' if smallest_config.epochs == 1 else 's'}"]
        if trial_kind(spec, smallest_config) != trial_kind(spec, config):
            shape.append("the head only")
        if folds > 1:
            shape.append(f"{folds} folds")
        return (f"even at its smallest ({', '.join(shape)}) it is predicted to take {cost}, more than the "
                f"{seconds_text(left)} left of --timeout")


def seconds_text(seconds: float) -> str:
    """Seconds as a person reads them: whole above 10, a tenth below (never "0s, more than the 0s left")."""
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
