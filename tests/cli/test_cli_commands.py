"""The read-only commands and the signal handling of a running search."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from automl_tl.cli import main
from tests.conftest import STUB_PLUGIN

STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs", "2", "--image-size", "16"]


def test_backbones_lists_weight_availability(capsys):
    assert main(["backbones", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "resnet50",
            "efficientnet_b0", "convnext_tiny"} <= set(rows)
    assert rows["mobilenet_v2"]["weights_available"] is True, "make setup seeds the offline MobileNetV2 weights"
    assert main(["backbones", "resnet*"]) == 0
    assert "resnet50" in capsys.readouterr().out


def test_backbones_without_weights_are_never_searched_silently(capsys, small_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    code = main(["search", str(small_sample), "--backbones", "resnet18", "--trials", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "resnet18" in err and "weights" in err


def test_show_and_studies(capsys, small_sample):
    assert main(["search", str(small_sample), "--trials", "2", "--study", "demo", *STUB]) == 0
    capsys.readouterr()
    assert main(["show", "demo", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["COMPLETE"] + summary["counts"]["PRUNED"] == 2
    assert summary["best_value"] == summary["best_trial"]["value"] and summary["best_params"]["backbone"] == "stub_net"
    assert summary["smart_start"]["0"].startswith("the classic bottleneck recipe")
    assert main(["show", "demo"]) == 0
    out = capsys.readouterr().out
    assert "Leaderboard" in out and "smart start trial 0: the classic bottleneck recipe" in out
    assert main(["studies", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["study"] for r in rows] == ["demo"] and rows[0]["trials"] == 2


def test_default_study_name_comes_from_the_data_folder(capsys, small_sample, isolated_studies):
    assert main(["search", str(small_sample), "--trials", "1", *STUB]) == 0
    assert (isolated_studies / f"{small_sample.name}.db").is_file()


def test_sample_data_writes_folder_per_class_pngs(tmp_path, capsys):
    from automl_tl.data.sample import write_sample

    target = write_sample(tmp_path / "s", limit_per_class=2, progress=False)
    assert sorted(p.name for p in target.iterdir() if p.is_dir())[:3] == ["bear", "bird", "cat"]
    assert main(["sample-data", str(tmp_path / "s")]) == 0


def started_trials(database) -> int:
    """Trials in the study file, read without touching its schema (the search may still be creating it)."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigterm_leaves_no_running_trial_and_a_database_that_opens(small_sample, isolated_studies, tmp_path):
    env = dict(os.environ, STUB_EPOCH_SECONDS="0.5", AUTOML_TL_STUDIES=str(isolated_studies))
    process = subprocess.Popen(
        [sys.executable, "-m", "automl_tl", "search", str(small_sample), "--trials", "50", "--study", "term", *STUB],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    database = isolated_studies / "term.db"
    deadline = time.time() + 60
    while time.time() < deadline and started_trials(database) < 2:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 130, output
    assert "resume" in output and "Traceback" not in output
    study = optuna.load_study(study_name="term", storage=f"sqlite:///{database}")
    states = [t.state for t in study.get_trials()]
    assert states and TrialState.RUNNING not in states
