"""Test accuracy is the chosen model's estimate: per trial only on request, in the table and on the page."""

from __future__ import annotations

from io import StringIO

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial
from rich.console import Console

from automl_tl.report.leaderboard import chosen_test_line, leaderboard_table
from automl_tl.report.page import leaderboard_section, per_backbone_section

CHOSEN_TEST, OTHER_TEST = 0.6125, 0.9375  # the runner-up's test accuracy is the higher: the tempting one


def study_with_two_trials() -> optuna.Study:
    study = optuna.create_study(study_name="pick", direction="maximize")
    distributions = {"backbone": CategoricalDistribution(["a", "b"]), "lr": FloatDistribution(1e-4, 1e-1, log=True)}
    for value, test, backbone in ((0.9, CHOSEN_TEST, "a"), (0.8, OTHER_TEST, "b")):
        study.add_trial(create_trial(value=value, params={"backbone": backbone, "lr": 1e-3}, distributions=distributions,
                                     user_attrs={"test_accuracy": test, "val_accuracy": value, "blocks": 4, "depth": 4,
                                                 "frozen_blocks": 4}))
    return study


def shown(table) -> str:
    console = Console(file=StringIO(), width=250)
    console.print(table)
    return console.file.getvalue()


def test_the_leaderboard_shows_the_chosen_models_test_accuracy_only():
    study = study_with_two_trials()
    text = shown(leaderboard_table(study))
    assert "test acc " not in text and f"{OTHER_TEST:.4f}" not in text
    caption = " ".join(text.split())  # the caption wraps at the table's width
    assert f"Chosen model: trial 0 (best score 0.9000), test accuracy {CHOSEN_TEST:.4f}" in caption
    assert "score: accuracy on the validation split" in caption  # the legend: what "score" is
    assert f"{CHOSEN_TEST:.4f}" not in shown(leaderboard_table(study, chosen_caption=False))


def test_every_trials_test_accuracy_on_request():
    text = shown(leaderboard_table(study_with_two_trials(), test_per_trial=True))
    assert "test acc" in text and f"{OTHER_TEST:.4f}" in text and f"{CHOSEN_TEST:.4f}" in text


def test_no_chosen_model_before_a_trial_completes():
    assert chosen_test_line(optuna.create_study(direction="maximize")) is None


def test_the_reports_tables_leave_per_trial_test_accuracy_out_unless_asked():
    study = study_with_two_trials()
    for section in (leaderboard_section, per_backbone_section):
        page = section(study)
        assert "test acc" not in page and f"{OTHER_TEST:.4f}" not in page, section.__name__
        asked = section(study, test_per_trial=True)
        assert "test acc" in asked and f"{OTHER_TEST:.4f}" in asked, section.__name__


def test_show_json_gives_the_score_under_its_one_name_and_says_what_it_is():
    from automl_tl.report.leaderboard import study_summary
    from automl_tl.study_record import SETTINGS_ATTR

    study = study_with_two_trials()
    summary = study_summary(study)
    assert summary["score_name"] == "validation accuracy"
    assert summary["best_score"] == summary["best_value"] == summary["best_trial"]["score"] == 0.9  # old keys kept
    study.set_user_attr(SETTINGS_ATTR, {"cv_folds": 5})
    assert study_summary(study)["score_name"] == "5-fold cross-validated accuracy"
