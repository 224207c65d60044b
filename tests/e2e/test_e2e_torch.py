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
        assert main(["export", "e2e", "--format", fmt, "-o", str(out)]) == 0
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
