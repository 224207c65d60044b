"""After a search, the command says where its time went (by phase and by kind of trial), the rows add up to
the command's wall time, and the study keeps the summary for ``show`` (text and JSON)."""

from __future__ import annotations

import json
import time

from automl_tl.cli import main
from tests.conftest import STUB_PLUGIN

STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs", "2", "--image-size", "16", "--pruner", "none"]


def test_a_search_says_where_its_time_went_and_show_prints_it_again(capsys, small_sample, monkeypatch):
    monkeypatch.setenv("STUB_EPOCH_SECONDS", "0.3")  # 3 trials of 2 epochs: at least 1.8 s in trials
    started = time.perf_counter()
    assert main(["search", str(small_sample), "--trials", "3", "--study", "tsum", "--no-smart-start", *STUB]) == 0
    wall = time.perf_counter() - started
    printed = capsys.readouterr().out
    assert "Where the time went" in printed and printed.index("Where the time went") > printed.index("score")
    assert "score:" in printed, "the legend says once what the score is"

    assert main(["show", "tsum", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["user_attrs"]["time_summary"]
    rows = {row["key"]: row for row in summary["rows"]}
    assert abs(sum(row["seconds"] for row in rows.values()) - summary["total_seconds"]) < 0.05
    assert 0.7 * wall <= summary["total_seconds"] <= wall, "the summary covers the command, not more"
    trials = [row for key, row in rows.items() if key.startswith("trials: ")]
    assert sum(row["trials"] for row in trials) == 3 and sum(row["seconds"] for row in trials) >= 1.8
    assert rows["decode"]["seconds"] > 0 and rows["study writes"]["seconds"] > 0
    assert rows["other"]["seconds"] < 0.5 * summary["total_seconds"], "most of the time is put somewhere"

    assert main(["show", "tsum"]) == 0
    shown = capsys.readouterr().out
    assert "Where the time went" in shown and trials[0]["label"] in shown
