"""The last search's time summary, kept with the study, in ``show`` and the report."""

from __future__ import annotations

import optuna
from optuna.trial import create_trial

from automl_tl.cli import main
from automl_tl.report.page import time_section
from automl_tl.study_record import TIME_SUMMARY_ATTR

SUMMARY = {"total_seconds": 45.0, "rows": [
    {"key": "decode", "label": "decoding images", "seconds": 10.0, "share": 0.2222, "trials": None},
    {"key": "trials: fine-tune", "label": "trials, fine-tune", "seconds": 35.0, "share": 0.7778, "trials": 2}]}


def test_the_report_shows_where_the_time_went_when_the_search_recorded_it():
    study = optuna.create_study(direction="maximize")
    assert time_section(study) == ""
    study.set_user_attr(TIME_SUMMARY_ATTR, {**SUMMARY, "rows": [*SUMMARY["rows"], "not a row",
                                                                {"label": "<b>x</b>", "seconds": "many"}]})
    page = time_section(study)
    assert "Where the time went" in page and "45 s in all" in page and "trials, fine-tune" in page
    assert ">35.0<" in page and ">78%<" in page and "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_show_prints_the_time_summary_a_search_kept(capsys, isolated_studies):
    isolated_studies.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name="timed", direction="maximize",
                                storage=f"sqlite:///{isolated_studies / 'timed.db'}")
    study.add_trial(create_trial(value=0.5, params={}, distributions={}))
    study.set_user_attr(TIME_SUMMARY_ATTR, SUMMARY)
    assert main(["show", "timed"]) == 0
    out = capsys.readouterr().out
    assert "Where the time went (0:45 in all)" in out
    assert any("trials, fine-tune" in line and "35.0" in line and "78%" in line for line in out.splitlines()), out
