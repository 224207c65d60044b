"""Tables never cut a number: at 120 and 80 columns a column wraps or is left out first (issue 23)."""

from __future__ import annotations

import json
import re

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import create_trial
from rich.console import Console

from automl_tl.report.leaderboard import leaderboard_table, pareto_table
from automl_tl.runtime.fitted_table import FitColumn, FittedTable
from automl_tl.study_record import LATENCY_ATTR, LATENCY_B32_ATTR

LONG_BACKBONES = ["efficientnet_lite0_with_a_rather_long_plugin_name", "mobilenet_v3_large_100_miil_in21k_ft_in1k"]


def crowded_study(trials: int = 8) -> optuna.Study:
    """Every optional column filled: per-block decay, latency, test accuracy; long backbone names."""
    study = optuna.create_study(study_name="a_study_with_a_long_name_too", direction="maximize")
    distributions = {"backbone": CategoricalDistribution(LONG_BACKBONES), "lr": FloatDistribution(1e-5, 1e-1, log=True),
                     "finetune_lr_ratio": FloatDistribution(0.01, 1.0), "block_lr_decay": FloatDistribution(0.1, 1.0),
                     "switch_epoch": IntDistribution(0, 10), "head_units": CategoricalDistribution([0, 256]),
                     "unfrozen_bn": CategoricalDistribution(["train", "frozen"])}
    for n in range(trials):
        params = {"backbone": LONG_BACKBONES[n % 2], "lr": 1.234e-4 * (n + 1), "finetune_lr_ratio": 0.1 + n / 100,
                  "block_lr_decay": 0.5 + n / 100, "switch_epoch": n % 10, "head_units": 256 if n % 2 else 0,
                  "unfrozen_bn": "train" if n % 2 else "frozen"}
        attrs = {"test_accuracy": 0.7001 + n / 1000, "val_balanced_accuracy": 0.6001 + n / 1000, "blocks": 17,
                 "depth": 16 - n % 3, "frozen_blocks": 10 + n % 5, "framework": "torch", "seconds": 1000.0 + 111 * n,
                 LATENCY_ATTR: 12.345 + n, LATENCY_B32_ATTR: 345.67 + 10 * n, "pretrained": n != 3}
        study.add_trial(create_trial(value=0.9001 - n / 1000, params=params, distributions=distributions,
                                     user_attrs=attrs))
    return study


def rendered(renderable, width: int) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def numbers_in(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?(?:e[-+]\d+)?", text))


@pytest.mark.parametrize("width", [120, 80])
def test_the_leaderboard_shows_every_number_whole(width):
    study = crowded_study()
    table = leaderboard_table(study, test_per_trial=True)
    text = rendered(table, width)
    assert all(len(line) <= width for line in text.splitlines()), text
    assert "…" not in text, text
    found = numbers_in(text)
    for trial in study.trials:
        a = trial.user_attrs
        for value in (f"{trial.value:.4f}", f"{a['test_accuracy']:.4f}"):  # score and test acc are always shown
            assert value in found, (value, text)
    kept = {table.columns[i].header for i in table.kept_columns(width)}
    for trial in study.trials:  # every column that is shown shows its numbers whole
        a, p = trial.user_attrs, trial.params
        expected = {"bal. acc": f"{a['val_balanced_accuracy']:.4f}", "lr": f"{p['lr']:.1e}", "secs": f"{a['seconds']:.0f}",
                    "ms": f"{a[LATENCY_ATTR]:.1f}", "decay": f"{p['block_lr_decay']:.2f}"}
        for header, value in expected.items():
            if header in kept:
                assert value in found, (header, value, text)
    left_out = [c.header for c in table.columns if c.header not in kept]
    if left_out:  # said, under the table
        assert f"Left out at this width: {', '.join(left_out)}" in " ".join(text.split())


def test_a_wide_console_shows_every_column_and_a_narrow_one_leaves_out_the_optional_ones_first():
    table = leaderboard_table(crowded_study(), test_per_trial=True)
    assert len(table.kept_columns(400)) == len(table.columns)
    narrow = [table.columns[i].header for i in table.kept_columns(80)]
    assert {"#", "score", "test acc", "backbone"} <= set(narrow)
    assert "BN" not in narrow and "decay" not in narrow  # the first to go


@pytest.mark.parametrize("width", [120, 80])
def test_the_pareto_front_shows_every_number_whole(width):
    study = crowded_study()
    text = rendered(pareto_table(study), width)
    assert all(len(line) <= width for line in text.splitlines()) and "…" not in text, text
    assert "12.3" in numbers_in(text) and "0.9001" in numbers_in(text)


def test_a_fitted_table_wraps_text_before_it_leaves_out_a_column():
    table = FittedTable([FitColumn("#"), FitColumn("description", numeric=False), FitColumn("value"),
                         FitColumn("extra", drop=0)])
    table.add_row("1", "a description of several words that must wrap " * 3, "0.123456789", "42.4242")
    text = rendered(table, 60)
    assert "0.123456789" in text and "42.4242" in text and len(text.splitlines()) > 5  # wrapped, nothing dropped
    tight = rendered(table, 30)  # too narrow for the extra column even with the text folded to a few letters
    assert "0.123456789" in tight and "42.4242" not in tight and "Left out at this width: extra" in " ".join(tight.split())


def test_studies_lists_every_best_score_whole_at_80_columns(capsys, isolated_studies, monkeypatch):
    from automl_tl.api import common
    from automl_tl.cli import main

    monkeypatch.setattr(common.console, "width", 80)
    isolated_studies.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{isolated_studies / 'many.db'}"
    for n in range(3):
        study = optuna.create_study(study_name=f"study_with_a_long_descriptive_name_{n}", storage=storage,
                                    direction="maximize")
        study.add_trial(create_trial(value=0.91234 + n / 100, params={"backbone": LONG_BACKBONES[n % 2]},
                                     distributions={"backbone": CategoricalDistribution(LONG_BACKBONES)}))
    assert main(["studies"]) == 0
    text = capsys.readouterr().out
    assert "score" in text and "…" not in text, text
    for n in range(3):
        assert f"{0.91234 + n / 100:.4f}" in text, text
    assert main(["studies", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(row["best_score"] == row["best_value"] and row["score_name"] == "validation accuracy" for row in rows)
