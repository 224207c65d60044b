"""A real search with the pretrained MobileNetV2 on real sample images, then resume, export and predict."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from automl_tl.cli import main
from automl_tl.data import FolderDataset, load_table
from automl_tl.plugin.manager import load_plugins
from automl_tl.storage.urls import storage_url

pytestmark = pytest.mark.slow

ARGS = ["--study", "e2e", "--epochs", "3", "--image-size", "32", "--backbones", "mobilenet_v2", "--seed", "1"]


@pytest.fixture(scope="module")
def searched(medium_sample, tmp_path_factory):
    studies = tmp_path_factory.mktemp("e2e_studies")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOML_TL_STUDIES", str(studies))
        patch.setenv("AUTOML_TL_CV", "off")
        assert main(["search", str(medium_sample), "--trials", "3", *ARGS]) == 0
    return studies


@pytest.fixture
def in_study(searched, monkeypatch):
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(searched))
    return searched


def load_study():
    return optuna.load_study(study_name="e2e", storage=storage_url("e2e", None))


def test_search_beats_chance_by_a_wide_margin(in_study, capsys):
    assert main(["show", "e2e", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] == 3
    assert summary["best_value"] > 0.45, "10 classes: chance is 0.10"
    assert summary["best_trial"]["user_attrs"]["pretrained"] is True


def test_resume_adds_exactly_the_missing_trials(in_study, medium_sample):
    assert main(["search", str(medium_sample), "--trials", "5", *ARGS]) == 0
    study = load_study()
    trials = study.get_trials()
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    failed = [t for t in trials if t.state.name == "FAIL"]  # e.g. a learning rate that made the loss NaN
    assert len(finished) == 5 and len(trials) == 5 + len(failed)
    assert all(t.user_attrs.get("fail_reason") for t in failed)


def test_export_both_formats_and_predict_the_trained_models_classes(in_study, medium_sample, tmp_path, capsys):
    study = load_study()
    best = max((t for t in study.get_trials() if t.state.name == "COMPLETE"), key=lambda t: t.value)
    plugins = load_plugins()
    from automl_tl.storage.artifacts import read_trial, study_folder, study_key
    from automl_tl.types import Preprocessing, TrialConfig

    key = study_key(study)
    artifact, meta = read_trial(study_folder(in_study / "e2e", key), best.number, "e2e", key)
    rule = Preprocessing.from_dict(meta["preprocessing"]).rule  # MobileNetV2's own: centre crop of 0.875
    assert rule.token() == "crop:0.875:bilinear"
    table = load_table(FolderDataset().discover(str(medium_sample)), 32, show_progress=False, rule=rule)
    test_paths = [str(medium_sample / table.relpaths[i]) for i in table.splits["test"]]
    adapter = plugins.framework("torch")
    model = adapter.load(plugins.backbone("mobilenet_v2"), artifact, 10, TrialConfig(**meta["config"]))
    batch = table.images[table.splits["test"]].astype(np.float32) / 255.0
    probabilities = adapter.predict_loaded(model, Preprocessing.from_dict(meta["preprocessing"]), batch)
    trained = probabilities.argmax(1)
    test_accuracy = float(np.mean(trained == table.labels[table.splits["test"]]))
    # The trial scored itself on float16 cached features; the reloaded model runs in float32 from the
    # pixels. They agree exactly except where the top two classes are within float16's rounding.
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    borderline = int(np.sum(top_two[:, 1] - top_two[:, 0] < 1e-3))
    assert abs(test_accuracy - best.user_attrs["test_accuracy"]) <= borderline / len(trained) + 1e-9

    for fmt in ("onnx", "torchscript"):
        out = tmp_path / fmt
        assert main(["export", "e2e", "--format", fmt, "-o", str(out), "--flip", "off"]) == 0
        assert "largest probability difference" in capsys.readouterr().out
        metadata = json.loads((out / "metadata.json").read_text())
        assert metadata["trial"] == best.number and metadata["val_accuracy"] == best.value
        assert json.loads((out / "labels.json").read_text())[0] == "bear"
        trust = ["--trust-model"] if fmt == "torchscript" else []  # TorchScript can run code on load
        assert main(["predict", str(out), *test_paths, "--json", "--top", "2", *trust]) == 0
        predictions = json.loads(capsys.readouterr().out)
        names = json.loads((out / "labels.json").read_text())
        predicted = np.array([names.index(p["top"][0]["label"]) for p in predictions])
        assert np.mean(predicted == trained) >= 0.99
        assert main(["evaluate", str(out), str(medium_sample), "--json", *trust]) == 0
        evaluated = json.loads(capsys.readouterr().out)
        assert abs(evaluated["accuracy"] - test_accuracy) <= 0.01  # the export is the reloaded trained model


def test_export_refuses_a_non_empty_folder_and_overwrites_only_its_own(in_study, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert main(["export", "e2e", "--format", "onnx", "-o", str(foreign), "--overwrite"]) == 2
    assert (foreign / "keep.txt").read_text() == "mine" and len(list(foreign.iterdir())) == 1
    ours = tmp_path / "ours"
    assert main(["export", "e2e", "--format", "onnx", "-o", str(ours)]) == 0
    assert main(["export", "e2e", "--format", "onnx", "-o", str(ours)]) == 2
    assert main(["export", "e2e", "--format", "torchscript", "-o", str(ours), "--overwrite"]) == 0
    assert json.loads((ours / "metadata.json").read_text())["format"] == "torchscript"
    assert not (ours / "model.onnx").exists()


def test_an_ensemble_exports_as_one_model_that_predict_and_evaluate_use(in_study, medium_sample, tmp_path, capsys):
    """Three rounds over three trials: one ONNX graph, checked against the members' own models, whose test
    accuracy is the one selection read from the members' kept probabilities."""
    out = tmp_path / "ensemble"
    assert main(["export", "e2e", "--format", "onnx", "-o", str(out), "--ensemble", "3", "--flip", "off"]) == 0
    printed = capsys.readouterr().out
    metadata = json.loads((out / "metadata.json").read_text())
    ensemble = metadata["ensemble"]
    assert sum(ensemble["weights"]) == 3 and metadata["parity"]["max_abs_difference"] < 1e-3
    if len(ensemble["members"]) > 1:
        assert "Ensemble of" in printed and f"trial {ensemble['best_single_trial']} alone" in printed
    test_paths = [str(p) for p in sorted(medium_sample.glob("*/*.png"))[:5]]
    assert main(["predict", str(out), *test_paths, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5
    assert main(["evaluate", str(out), str(medium_sample), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert abs(evaluated["accuracy"] - ensemble["test_accuracy"]) <= 0.01


def test_export_ensemble_auto_says_its_cross_fitted_decision(in_study, tmp_path, capsys):
    """``auto`` prints what it exports and why: the ensemble against the best single trial on rows neither was
    chosen on, with the same figures the export's metadata records."""
    out = tmp_path / "auto"
    assert main(["export", "e2e", "--format", "onnx", "-o", str(out), "--ensemble", "auto", "--flip", "off"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    ensemble = json.loads((out / "metadata.json").read_text())["ensemble"]
    check = ensemble["cross_fitted"]
    assert f"Cross-fitted check: on {check['rows']} validation rows it was not chosen on" in printed
    assert f"scored {check['ensemble_accuracy']:.4f}" in printed and f"against {check['single_accuracy']:.4f}" in printed
    if "refused" in ensemble:
        assert ensemble["members"] == [ensemble["best_single_trial"]] and len(ensemble["refused"]["members"]) > 1
        assert f"so trial {ensemble['best_single_trial']} is exported alone" in printed and not check["pays"]
    elif len(ensemble["members"]) > 1:
        assert "so the ensemble is exported" in printed and check["pays"]


def test_ensemble_options_that_cannot_work_are_refused(in_study, tmp_path, capsys):
    assert main(["export", "e2e", "--format", "onnx", "-o", str(tmp_path / "a"), "--ensemble", "3", "--trial", "0"]) == 2
    assert "--trial and --ensemble" in capsys.readouterr().err
    assert main(["export", "e2e", "--format", "onnx", "-o", str(tmp_path / "b"), "--ensemble", "0"]) == 2
    assert "--ensemble 0" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture
def timed_copy(searched, tmp_path, monkeypatch):
    """A copy of the study in which the most accurate trial is slow (50 ms), the next two fast (1 and 2 ms)
    and any others slower still (60 ms): the fastest and the most accurate trials differ. The runner-up is the
    faster of the two, so that it is the choice within a limit even when the third ties its score."""
    import shutil

    copy = tmp_path / "studies"
    shutil.copytree(searched, copy)
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(copy))
    import sqlite3

    ranked = sorted((t for t in load_study().get_trials() if t.state.name == "COMPLETE"), key=lambda t: -t.value)
    with sqlite3.connect(copy / "e2e.db") as database:  # Optuna refuses to edit finished trials: edit the table
        latencies = [50.0, 1.0, 2.0] + [60.0] * (len(ranked) - 3)
        for trial, latency in zip(ranked, latencies):
            database.execute("UPDATE trial_user_attributes SET value_json = ? WHERE trial_id = ? AND key = 'latency_ms'",
                             (json.dumps(latency), trial._trial_id))
    assert [load_study().trials[t.number].user_attrs["latency_ms"] for t in ranked] == latencies
    return [t.number for t in ranked]


def test_export_max_latency_picks_the_most_accurate_trial_within_the_limit(timed_copy, tmp_path, capsys):
    most_accurate, runner_up = timed_copy[0], timed_copy[1]
    out = tmp_path / "fast"
    assert main(["export", "e2e", "--format", "onnx", "-o", str(out), "--max-latency-ms", "10"]) == 0
    printed = capsys.readouterr().out
    assert json.loads((out / "metadata.json").read_text())["trial"] == runner_up
    assert f"trial {runner_up}" in printed and f"trial {most_accurate}" in printed and "50.0 ms > 10 ms" in printed
    assert main(["export", "e2e", "--format", "onnx", "-o", str(tmp_path / "none"), "--max-latency-ms", "0.5"]) == 2
    assert "no completed trial runs within 0.5 ms" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    assert main(["export", "e2e", "--format", "onnx", "-o", str(tmp_path / "x"), "--max-latency-ms", "-3"]) == 2


def test_an_ensemble_under_a_latency_limit_takes_only_trials_that_fit_it(timed_copy, tmp_path, capsys):
    out = tmp_path / "ensemble"
    assert main(["export", "e2e", "--format", "onnx", "-o", str(out), "--ensemble", "4", "--max-latency-ms", "2.5"]) == 0
    ensemble = json.loads((out / "metadata.json").read_text())["ensemble"]
    # 50 ms never fits; 1 + 2 ms would pass 2.5 ms, so one of the two fast trials is the only member
    assert timed_copy[0] not in ensemble["members"] and len(ensemble["members"]) == 1
    assert ensemble["members"][0] in timed_copy[1:]


def test_show_and_the_report_give_the_ensemble_beside_the_best_single_trial(in_study, tmp_path, capsys):
    from automl_tl.report.ensemble_summary import ensemble_section, study_ensemble

    assert main(["show", "e2e", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["ensemble"]
    assert summary["best_single_trial"] == load_study().best_trial.number
    assert summary["val_accuracy"] >= summary["best_single_val_accuracy"]  # auto keeps the best prefix
    assert main(["show", "e2e"]) == 0
    assert "Ensemble (export --ensemble auto)" in capsys.readouterr().out
    ensemble, _ = study_ensemble(load_study())
    page = ensemble_section(ensemble)
    assert "Ensemble of trials" in page and f"best single trial ({summary['best_single_trial']})" in page
    assert ensemble_section(None, "No kept probabilities <here>.").count("&lt;here&gt;") == 1
