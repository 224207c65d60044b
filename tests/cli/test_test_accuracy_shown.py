"""``search``, ``show`` and ``report`` give the chosen model's test accuracy; every trial's only with --test-per-trial."""

from __future__ import annotations

import re

from automl_tl.api import common
from automl_tl.cli import main
from tests.conftest import STUB_PLUGIN

# Scored on the validation split: what is shown under --cv is tests/cli/test_cv_option.py's subject.
STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs", "2", "--image-size", "16", "--cv", "off"]


def test_search_and_show_give_the_chosen_models_test_accuracy_only(capsys, small_sample, monkeypatch):
    monkeypatch.setattr(common.console, "width", 250)
    assert main(["search", str(small_sample), "--trials", "3", "--study", "t", "--no-smart-start", *STUB]) == 0
    out = capsys.readouterr().out
    trial_lines = [line for line in out.splitlines() if re.match(r"\s*trial +\d+ ", line)]
    assert trial_lines and not any("test" in line for line in trial_lines), trial_lines
    assert "test acc " not in out and "Chosen model: trial" in out
    assert main(["show", "t"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Best trial \d+ \(the chosen model\): score [\d.]+ \(balanced [\d.]+\), test acc [\d.]+", out)
    assert "┃ test acc" not in out and "chosen model only (--test-per-trial shows every trial's)" in out
    assert main(["show", "t", "--test-per-trial"]) == 0
    assert "┃ test acc" in capsys.readouterr().out


def test_the_report_gives_every_trials_test_accuracy_only_on_request(capsys, small_sample, tmp_path):
    assert main(["search", str(small_sample), "--trials", "2", "--study", "r", "--no-smart-start", *STUB]) == 0
    pages = {}
    for name, extra in (("plain", []), ("asked", ["--test-per-trial"])):
        out = tmp_path / f"{name}.html"
        assert main(["report", "r", "-o", str(out), "--plugin", STUB_PLUGIN, *extra]) == 0
        pages[name] = out.read_text()
    assert "<th>test acc</th>" not in pages["plain"] and "<th>its test acc</th>" not in pages["plain"]
    assert "shown for the chosen model only" in pages["plain"]
    assert "<th>test acc</th>" in pages["asked"] and "<th>its test acc</th>" in pages["asked"]


def test_evaluate_says_which_studys_trial_it_measured():
    import numpy as np

    from automl_tl.deploy.evaluate import evaluate_export
    from automl_tl.deploy.predict import LoadedExport
    from automl_tl.testing import synthetic_table
    from automl_tl.types import Preprocessing

    class Uniform:
        def predict(self, batch: np.ndarray) -> np.ndarray:
            return np.full((len(batch), 2), 0.5, dtype=np.float32)

    table = synthetic_table(n_per_split=4, size=8, classes=2)
    loaded = LoadedExport(Uniform(), list(table.class_names), Preprocessing(8, (0.5,) * 3, (0.5,) * 3),
                          {"study": "s", "trial": 7})
    result = evaluate_export(loaded, table, "test")
    assert (result["study"], result["trial"], result["split"]) == ("s", 7, "test")
