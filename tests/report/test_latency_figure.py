"""Accuracy against latency: the Pareto front in the report's figure, in ``show`` and ``show --plot``."""

from __future__ import annotations

import shutil
from io import StringIO

import matplotlib
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

import automl_tl.report.figures as figures
from automl_tl.cli import main
from automl_tl.report.leaderboard import leaderboard_table, pareto_table, study_summary
from automl_tl.report.page import leaderboard_section, plots_section
from automl_tl.study_record import LATENCY_ATTR, LATENCY_B32_ATTR, SETTINGS_ATTR, TOO_SLOW_ATTR

matplotlib.use("Agg")

# (val acc, batch-1 ms, backbone): the most accurate (trial 3) is not the fastest (trial 1); trials 2 and 4 are dominated.
ROWS = [(0.90, 3.0, "fast"), (0.80, 1.0, "fast"), (0.79, 2.0, "fast"), (0.93, 80.0, "big"), (0.92, 90.0, "big")]


def timed_study(limit: float | None = 50.0) -> optuna.Study:
    study = optuna.create_study(study_name="trade", direction="maximize")
    distributions = {"backbone": CategoricalDistribution(["fast", "big"]), "lr": FloatDistribution(1e-4, 1e-1, log=True)}
    for value, ms, backbone in ROWS:
        study.add_trial(create_trial(value=value, params={"backbone": backbone, "lr": 1e-3}, distributions=distributions,
                                     user_attrs={LATENCY_ATTR: ms, LATENCY_B32_ATTR: 20 * ms, "val_accuracy": value,
                                                 "blocks": 4, "depth": 4}))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"backbone": "big", "lr": 1e-3},
                                 distributions=distributions, user_attrs={LATENCY_ATTR: 400.0, TOO_SLOW_ATTR: "too slow"}))
    if limit is not None:
        study.set_user_attr(SETTINGS_ATTR, {"max_latency_ms": limit})
    return study


def text_of(table) -> str:
    console = Console(file=StringIO(), width=250)
    console.print(table)
    return console.file.getvalue()


def test_the_figure_marks_the_pareto_front_and_the_limit():
    figure = figures.accuracy_latency_figure(timed_study())
    axis = figure.axes[0]
    front = next(line for line in axis.get_lines() if line.get_label() == "Pareto front")
    assert list(front.get_xdata()) == [1.0, 3.0, 80.0] and list(front.get_ydata()) == [0.80, 0.90, 0.93]
    assert front.get_drawstyle() == "steps-post"
    limit = next(line for line in axis.get_lines() if line.get_label() == "limit 50 ms")
    assert list(limit.get_xdata()) == [50.0, 50.0]
    assert sorted(text.get_text() for text in axis.texts) == ["0", "1", "3"], "the front's trials are labelled"
    assert axis.get_xscale() == "log", "latencies from 1 to 90 ms"
    assert sum(len(collection.get_offsets()) for collection in axis.collections[:2]) == 5, "pruned trials are not drawn"
    assert "latency at batch 1" in axis.get_xlabel()
    figures._pyplot().close(figure)


def test_no_figure_without_a_measured_latency_and_the_page_says_why():
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(value=0.5, params={}, distributions={}))
    assert figures.accuracy_latency(study) is None and pareto_table(study) is None
    assert "No completed trial has a measured latency" in plots_section(study)
    page = plots_section(timed_study())
    assert ">Accuracy and latency" in page and "Pareto front" in page and page.count("data:image/png;base64,") >= 3


def test_show_and_the_report_list_each_trials_latency_and_the_front():
    study = timed_study()
    board = text_of(leaderboard_table(study))
    assert " ms " in board and "80.0" in board and "batch-1 latency" in board
    front = text_of(pareto_table(study))
    assert "Pareto front (3 of 5 timed trials)" in front and "1600" in front  # trial 3's batch-32 figure
    assert "90.0" not in front, "trial 4 is dominated by trial 3"
    assert "<th>ms (batch 1)</th>" in leaderboard_section(study) and ">80.00<" in leaderboard_section(study)
    assert study_summary(study)["latency"] == {"max_latency_ms": 50.0, "too_slow": [5], "pareto_front": [1, 0, 3]}


def test_show_plot_writes_the_figure_of_a_real_study(small_cnn_exports, tmp_path, monkeypatch, capsys):
    studies = tmp_path / "studies"
    shutil.copytree(small_cnn_exports / "studies", studies)
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(studies))
    out = tmp_path / "plots" / "trade.png"
    assert main(["show", "mf", "--plot", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "Accuracy-latency Pareto front (1 of 1" in text
    assert main(["show", "mf", "--json", "--plot", str(tmp_path / "trade.svg")]) == 0
    assert (tmp_path / "trade.svg").read_text().lstrip().startswith("<?xml")
    assert main(["show", "mf", "--plot", str(tmp_path / "trade.nosuchformat")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_show_plot_without_a_timed_trial_says_there_is_nothing_to_draw(tmp_path, capsys):
    from automl_tl.storage.urls import open_storage, storage_url

    study = optuna.create_study(study_name="old", storage=open_storage(storage_url("old", None)), direction="maximize")
    study.add_trial(create_trial(value=0.5, params={}, distributions={}))
    assert main(["show", "old", "--plot", str(tmp_path / "x.png")]) == 2
    assert "no completed trial of study 'old' has a measured latency" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("limit", [None, 2.0])
def test_the_figure_draws_a_limit_only_when_the_study_has_one(limit):
    figure = figures.accuracy_latency_figure(timed_study(limit))
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["Pareto front"] + ([f"limit {limit:g} ms"] if limit else [])
    figures._pyplot().close(figure)
