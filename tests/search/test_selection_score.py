"""A cross-validated trial that the deadline left without its refit is ranked by its score less one standard error."""

from __future__ import annotations

import math

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from automl_tl.report.leaderboard import chosen_test_line
from automl_tl.tuning.budget import ranked_trials, selection_score, without_its_refit

CUT = {"stopped_by": "deadline", "cv_folds": 5, "cv_folds_done": 5, "cv_refit": False, "cv_scored_images": 574}
FULL = {"cv_folds": 5, "cv_folds_done": 5, "cv_refit": True, "cv_scored_images": 574}


def study_of(*trials: tuple[float, dict]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for value, attrs in trials:
        study.add_trial(create_trial(value=value, params={"lr": 1e-3}, distributions={"lr": FloatDistribution(1e-5, 1.0)},
                                     user_attrs={"test_accuracy": 0.5, **attrs}))
    return study


def test_a_trial_without_its_refit_leads_only_by_more_than_its_standard_error():
    study = study_of((0.9077, FULL), (0.9087, CUT))
    assert [t.number for t in ranked_trials(study)] == [0, 1]
    cut = study.get_trials()[1]
    assert without_its_refit(cut)
    assert math.isclose(selection_score(cut), 0.9087 - math.sqrt(0.9087 * 0.0913 / 574))
    clearly_better = study_of((0.9077, FULL), (0.95, CUT))
    assert [t.number for t in ranked_trials(clearly_better)] == [1, 0]


def test_other_trials_are_ranked_by_their_score():
    single_split_cut = {"stopped_by": "deadline"}  # it kept its best whole epoch: the model its score describes
    study = study_of((0.90, FULL), (0.91, single_split_cut), (0.905, {}))
    assert [t.number for t in ranked_trials(study)] == [1, 2, 0]
    assert all(selection_score(t) == t.value for t in study.get_trials())


def test_the_chosen_line_says_why_a_higher_score_was_passed_over():
    line = chosen_test_line(study_of((0.9077, FULL), (0.9087, CUT)))
    assert "Chosen model: trial 0" in line and "Trial(s) 1" in line and "cut their refit" in line
    assert "cut their refit" not in chosen_test_line(study_of((0.9077, FULL), (0.95, CUT)))
