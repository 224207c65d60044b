"""The leaderboard shows the per-block rate decay once a shown trial searched it, and no empty column before."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial

from automl_tl.report.leaderboard import leaderboard_table
from tests.report.test_leaderboard import shown


def study_with(decays: list[float | None]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    distributions = {"backbone": CategoricalDistribution(["a"]), "block_lr_decay": FloatDistribution(0.5, 1.0, step=0.05)}
    for i, decay in enumerate(decays):
        params: dict[str, object] = {"backbone": "a", **({"block_lr_decay": decay} if decay is not None else {})}
        study.add_trial(create_trial(value=0.9 - i / 10, params=params,
                                     distributions={k: v for k, v in distributions.items() if k in params},
                                     user_attrs={"blocks": 4, "depth": 4, "frozen_blocks": 2}))
    return study


def test_the_decay_column_appears_only_where_a_trial_has_one():
    assert "decay" not in shown(leaderboard_table(study_with([None, None])))
    text = shown(leaderboard_table(study_with([0.65, None])))
    assert "decay" in text and "0.65" in text
