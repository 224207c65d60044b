"""``export --flip``: the decision rule, the mirrored predictions a trial keeps, a flip-averaged export that
equals the mean of the model on an image and its mirror (every torch format, int8 too), predict and
evaluate agreeing with it, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from automl_tl.data.images import to_model_input
from automl_tl.deploy.export import load_trial_model
from automl_tl.deploy.flip import FlipChoice, FlipScores, flip_pays, judge_flip, kept_scores, with_latency
from automl_tl.deploy.predict import load_export
from automl_tl.errors import UserError
from automl_tl.plugin.manager import load_plugins
from automl_tl.storage.artifacts import trial_dir
from automl_tl.storage.predictions import SplitPredictions, load_predictions, save_predictions
from tests.deploy.conftest import run


def artifacts_of(studies: Path) -> Path:
    return next(p.parent for p in studies.rglob("predictions.npz"))


# -- the decision rule -------------------------------------------------------------------------
def test_flip_pays_on_accuracy_first_then_log_loss() -> None:
    assert flip_pays(FlipScores(0.80, 0.50, 10), FlipScores(0.90, 0.90, 10))  # more accurate, whatever the loss
    assert not flip_pays(FlipScores(0.90, 0.90, 10), FlipScores(0.80, 0.10, 10))  # less accurate, whatever the loss
    assert flip_pays(FlipScores(0.80, 0.50, 10), FlipScores(0.80, 0.40, 10))  # a tie: the lower loss
    assert not flip_pays(FlipScores(0.80, 0.50, 10), FlipScores(0.80, 0.50, 10))  # no better: no doubled work


def kept(directory: Path, val: np.ndarray, val_flip: np.ndarray | None, labels: np.ndarray) -> None:
    index = np.arange(len(labels))
    splits = {"val": SplitPredictions(val, index, labels)}
    if val_flip is not None:
        splits["val_flip"] = SplitPredictions(val_flip, index, labels)
    save_predictions(directory, splits)


def test_auto_decides_on_the_mean_of_the_kept_plain_and_mirrored_predictions(tmp_path: Path) -> None:
    labels = np.array([0, 1, 1, 0])
    plain = np.array([[0.6, 0.4], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]], np.float32)  # 3 of 4
    mirrored = np.array([[0.7, 0.3], [0.1, 0.9], [0.3, 0.7], [0.8, 0.2]], np.float32)  # the mean gets all 4
    kept(trial_dir(tmp_path, 3), plain, mirrored, labels)
    choice = judge_flip("auto", tmp_path, [(3, 1)])
    assert choice.flip and choice.plain is not None and choice.averaged is not None
    assert (choice.plain.accuracy, choice.averaged.accuracy) == (0.75, 1.0)
    kept(trial_dir(tmp_path, 4), plain, plain[:, ::-1].copy(), labels)  # a mirror that gets everything wrong
    assert not judge_flip("auto", tmp_path, [(4, 1)]).flip
    assert judge_flip("on", tmp_path, [(4, 1)]).flip  # on is on, whatever validation says
    # An ensemble: the members' weighted means, plain and mirrored, are what is compared.
    scores = kept_scores(tmp_path, [(3, 3), (4, 1)])
    assert not isinstance(scores, str)
    expected_plain = plain  # both members' plain predictions are the same
    assert scores[0].accuracy == pytest.approx(float(np.mean(expected_plain.argmax(1) == labels)))
    averaged = (plain + (3 * mirrored + plain[:, ::-1]) / 4) / 2
    assert scores[1].log_loss == pytest.approx(float(-np.mean(np.log(averaged[np.arange(4), labels]))), rel=1e-5)


def test_auto_is_off_and_says_why_for_a_trial_without_mirrored_predictions(tmp_path: Path) -> None:
    labels = np.array([0, 1])
    kept(trial_dir(tmp_path, 0), np.eye(2, dtype=np.float32), None, labels)
    choice = judge_flip("auto", tmp_path, [(0, 1)])
    assert not choice.flip and "kept no predictions on mirrored validation images" in choice.reason
    assert not judge_flip("off", tmp_path, [(0, 1)]).flip


def test_the_latency_limit_drops_auto_and_refuses_on() -> None:
    auto = FlipChoice("auto", True, "on: better")
    assert with_latency(auto, 1.0, 1.9, 2.0).flip
    dropped = with_latency(auto, 1.0, 2.1, 2.0)
    assert not dropped.flip and "over --max-latency-ms 2" in dropped.reason and dropped.averaged_ms == 2.1
    assert with_latency(auto, 1.0, 2.1, None).flip
    with pytest.raises(UserError, match="--flip on --max-latency-ms 2"):
        with_latency(FlipChoice("on", True, "--flip on"), 1.0, 2.1, 2.0)


# -- what a trial keeps --------------------------------------------------------------------------
def test_a_trial_keeps_its_weights_predictions_on_the_mirrored_images(small_cnn_study: Path) -> None:
    artifacts = artifacts_of(small_cnn_study)
    predictions = load_predictions(artifacts)
    assert predictions is not None and {"val_flip", "test_flip"} <= set(predictions)
    mf = optuna.load_study(study_name="mf", storage=f"sqlite:///{small_cnn_study / 'mf.db'}")
    assert mf.trials[0].params["augment"] == "hflip", "only a trial that trains on the mirror keeps these"
    trial = load_trial_model(load_plugins(), mf, artifacts.parent, int(artifacts.name.split("-")[-1]))
    from automl_tl.tuning.study_data import study_data

    table = study_data(load_plugins(), mf.user_attrs, "mf", None, image_size=trial.preprocessing.image_size,
                       rule=trial.preprocessing.rule, show_progress=False).table
    rows = predictions["val_flip"].index
    images = to_model_input(table.images[rows])
    plain = trial.adapter.predict_loaded(trial.model, trial.preprocessing, images)
    expected = trial.adapter.predict_loaded(trial.model, trial.preprocessing, np.ascontiguousarray(images[:, :, ::-1]))
    assert np.allclose(predictions["val"].probabilities, plain, atol=1e-5)  # the reference holds
    assert np.allclose(predictions["val_flip"].probabilities, expected, atol=1e-5)
    assert not np.allclose(expected, plain, atol=1e-5)


# -- the export --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_flip_export_is_the_mean_of_the_model_on_the_image_and_its_mirror(
        small_cnn_study: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "export", "mf", "--format", fmt, "-o", str(tmp_path / "on"), "--flip", "on")
    assert code == 0, out
    assert "Flip-averaging ON: --flip on" in out and "ms averaged" in out
    metadata = json.loads((tmp_path / "on" / "metadata.json").read_text())
    assert metadata["flip"]["averaged"] is True and metadata["flip"]["batch_1_ms"]["mirror_averaged"] > 0
    artifacts = artifacts_of(small_cnn_study)
    mf = optuna.load_study(study_name="mf", storage=f"sqlite:///{small_cnn_study / 'mf.db'}")
    trial = load_trial_model(load_plugins(), mf, artifacts.parent, metadata["trial"])
    batch = np.random.default_rng(1).random((5, 16, 16, 3), dtype=np.float32)
    plain = trial.adapter.predict_loaded(trial.model, trial.preprocessing, batch)
    mirrored = trial.adapter.predict_loaded(trial.model, trial.preprocessing, np.ascontiguousarray(batch[:, :, ::-1]))
    exported = load_export(load_plugins(), tmp_path / "on", trusted=True).model.predict(batch)
    assert np.allclose(exported, (plain + mirrored) / 2, atol=1e-5)
    assert not np.allclose(exported, plain, atol=1e-4)
    assert run(capsys, "export", "mf", "--format", fmt, "-o", str(tmp_path / "off"), "--flip", "off")[0] == 0
    assert np.allclose(load_export(load_plugins(), tmp_path / "off", trusted=True).model.predict(batch), plain, atol=1e-5)
    assert json.loads((tmp_path / "off" / "metadata.json").read_text())["flip"]["averaged"] is False


def test_predict_and_evaluate_agree_with_a_flip_export(small_cnn_study: Path, small_sample: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "export", "mf", "--format", "onnx", "-o", str(tmp_path / "m"), "--flip", "on")[0] == 0
    code, out = run(capsys, "evaluate", str(tmp_path / "m"), str(small_sample), "--split", "all", "--json")
    assert code == 0, out
    evaluated = json.loads(out)
    assert evaluated["flip_averaged"] is True
    code, out = run(capsys, "predict", str(tmp_path / "m"), str(small_sample), "--json")
    assert code == 0
    predicted = json.loads(out)
    right = sum(Path(p["path"]).parent.name == p["top"][0]["label"] for p in predicted)
    assert evaluated["images"] == len(predicted)
    assert evaluated["accuracy"] == pytest.approx(right / len(predicted))


def test_a_flip_export_quantizes(small_cnn_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "export", "mf", "--format", "onnx", "-o", str(tmp_path / "q"), "--flip", "on",
                    "--quantize", "int8", "--max-accuracy-drop", "100")
    assert code == 0, out
    metadata = json.loads((tmp_path / "q" / "metadata.json").read_text())
    assert metadata["quantized"] == "int8" and metadata["flip"]["averaged"] is True


def test_a_bad_flip_value_is_one_paragraph_and_exit_2(small_cnn_study: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "export", "mf", "--format", "onnx", "-o", str(tmp_path / "x"), "--flip", "maybe")
    assert code == 2
    assert "--flip maybe: give auto" in out and "Traceback" not in out
    assert not (tmp_path / "x").exists()
