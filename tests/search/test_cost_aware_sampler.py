"""Cost-aware TPE: Optuna really calls the override, the cheaper of two equally good regions wins, candidates that
cannot finish in the time left are dropped, and a failing cost function leaves plain TPE's choices."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from automl_tl.tuning.cost import DataSizes, TrialCostModel
from automl_tl.tuning.cost_aware_sampler import (
    CostAwareTPESampler,
    SamplingCost,
    budget_share_left,
    cost_adjusted,
    params_seconds,
    typical_params,
)
from automl_tl.tuning.lifecycle import make_sampler
from automl_tl.tuning.settings import SearchSettings
from automl_tl.tuning.space import search_space
from tests.support.sample_plugins.stub_plugin import stub_spec

COST = {"cheap": 1.0, "dear": 1000.0}
STARTUP, CANDIDATES = 5, 24


def objective(trial: optuna.Trial) -> float:
    """Two regions exactly as good: only ``x`` matters."""
    region = trial.suggest_categorical("region", ["cheap", "dear"])
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("region", region)
    return -((x - 0.3) ** 2)


def run(sampler: optuna.samplers.BaseSampler, trials: int = 40) -> list[str]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=trials)
    return [t.params["region"] for t in study.trials[STARTUP:]]


def by_region(params: Mapping[str, Any]) -> float:
    return COST[params["region"]]


def sampler(cost: SamplingCost, seed: int = 3) -> CostAwareTPESampler:
    return CostAwareTPESampler(cost, seed=seed, n_startup_trials=STARTUP, n_ei_candidates=CANDIDATES)


def test_optuna_calls_the_override_with_every_candidate_decoded_and_completed():
    seen: list[dict[str, Any]] = []

    def spy(params: Mapping[str, Any]) -> float:
        seen.append(dict(params))
        return by_region(params)

    cost_aware = sampler(SamplingCost(spy, share_left=lambda: 1.0, typical={"extra": 7}))
    run(cost_aware, trials=STARTUP + 3)
    # If Optuna stopped routing TPE's choice through _compute_acquisition_func, nothing would be seen here.
    assert cost_aware.adjusted_calls >= 3 and cost_aware.fallbacks == 0
    assert len(seen) == cost_aware.adjusted_calls * CANDIDATES
    assert all(p["region"] in COST and 0.0 <= p["x"] <= 1.0 and p["extra"] == 7 for p in seen)


def test_the_cheaper_of_two_equally_good_regions_is_preferred():
    plain = [run(optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP)) for seed in range(3)]
    aware = [run(sampler(SamplingCost(by_region, share_left=lambda: 1.0), seed=seed)) for seed in range(3)]
    plain_dear = np.mean([r.count("dear") / len(r) for r in plain])
    aware_dear = np.mean([r.count("dear") / len(r) for r in aware])
    assert aware_dear < 0.15 < plain_dear  # plain TPE keeps drawing both regions; EI per second avoids the dear one


def test_cooled_down_the_cost_no_longer_matters_but_the_time_left_does():
    cooled = run(sampler(SamplingCost(by_region, share_left=lambda: 0.0)))
    assert "dear" in cooled  # alpha 0: plain expected improvement
    bounded = run(sampler(SamplingCost(by_region, share_left=lambda: 0.0, seconds_left=lambda: 10.0)))
    assert "dear" not in bounded  # a candidate that cannot finish in the time left is never chosen


def test_a_failing_cost_function_leaves_plain_tpe_choices():
    def broken(params: Mapping[str, Any]) -> float:
        raise RuntimeError("no timings")

    failing = sampler(SamplingCost(broken, share_left=lambda: 1.0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = []
    for chosen in (failing, optuna.samplers.TPESampler(seed=3, n_startup_trials=STARTUP, n_ei_candidates=CANDIDATES)):
        study = optuna.create_study(direction="maximize", sampler=chosen)
        study.optimize(objective, n_trials=STARTUP + 5)
        studies.append([t.params for t in study.trials])
    assert studies[0] == studies[1] and failing.fallbacks > 0


def test_cost_adjustment_unknown_costs_and_all_over_the_limit():
    values = np.array([0.0, 0.0, 0.0])
    adjusted = cost_adjusted(values, np.array([1.0, math.e, math.nan]), 1.0, None)
    assert adjusted[0] == pytest.approx(0.0) and adjusted[1] == pytest.approx(-1.0)
    assert adjusted[2] == pytest.approx(-0.5)  # unknown: the median of the known costs (sqrt(e))
    everything_over = cost_adjusted(values, np.array([50.0, 60.0, 70.0]), 0.0, 10.0)
    assert np.isfinite(everything_over).all()  # all over the limit: none dropped, TPE still chooses
    assert (cost_adjusted(values, np.array([math.nan] * 3), 1.0, 1.0) == values).all()


def test_typical_params_and_budget_share():
    typical = typical_params({"c": CategoricalDistribution(["a", "b"]), "f": FloatDistribution(0.0, 1.0, step=0.25),
                              "l": FloatDistribution(1e-4, 1e-2, log=True), "i": IntDistribution(1, 4)})
    assert typical["c"] == "a" and typical["f"] == 0.5 and typical["l"] == pytest.approx(1e-3) and typical["i"] in (2, 3)
    assert budget_share_left(30, 120) == 0.25 and budget_share_left(-5, 120) == 0.0 and budget_share_left(5, 0) == 0.0


def test_params_seconds_prices_a_searched_parameter_set():
    spec = stub_spec()
    model = TrialCostModel(lambda s, size: (1e-3,) * len(s.blocks), DataSizes(100, 20, 20))
    seconds_of = params_seconds(model, lambda name: spec, epochs=4, image_size=32)
    typical = typical_params(search_space([spec.name], 4))
    head = seconds_of({**typical, "freeze_fraction": 1.0})
    tuned = seconds_of({**typical, "freeze_fraction": 0.0, "switch_epoch": 1})
    assert head is not None and tuned is not None and tuned > head


def test_make_sampler_is_cost_aware_only_when_given_a_cost(tmp_path):
    settings = SearchSettings(study_name="s", storage_url=f"sqlite:///{tmp_path / 's.db'}", artifacts=tmp_path,
                              trials=4, epochs=2, image_size=16, backbones=["stub_net"], data_location=".")
    assert type(make_sampler(settings)) is optuna.samplers.TPESampler
    cost = SamplingCost(by_region, share_left=lambda: 1.0)
    chosen = make_sampler(settings, cost=cost)
    assert isinstance(chosen, CostAwareTPESampler) and chosen.cost is cost
