"""Keras to TensorFlow Lite: a float ``.tflite`` export that predicts what the trial did, its int8 form
(smaller, float input and output, within the accuracy limit), both opened without --trust-model; and a
``.tflite`` file that would need TensorFlow's own operators (which can read files) does not load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow", reason="the keras extra is not installed")

from automl_tl.cli import main  # noqa: E402
from tests.support.studies import searched_study  # noqa: E402

pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def keras_study(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return searched_study(tmp_path_factory, "tflite_studies", small_sample, "kt", "--framework", "keras", "--backbones",
                          "MobileNetV2", "--trials", "1", "--epochs", "1", "--image-size", "32", "--seed", "3")


def test_tflite_float_and_int8_exports_predict_and_evaluate(keras_study, small_sample, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(keras_study))
    float_dir, int8_dir = tmp_path / "float", tmp_path / "int8"
    code, text = run(capsys, "export", "kt", "--format", "tflite", "-o", str(float_dir))
    assert code == 0, text
    code, text = run(capsys, "export", "kt", "--format", "tflite", "--quantize", "int8", "--max-accuracy-drop", "100",
                     "-o", str(int8_dir))
    assert code == 0, text
    metadata = json.loads((int8_dir / "metadata.json").read_text())
    assert metadata["quantized"] == "int8" and metadata["model_file"] == "model.int8.tflite"
    assert not (int8_dir / "model.tflite").exists()
    ratio = (float_dir / "model.tflite").stat().st_size / (int8_dir / "model.int8.tflite").stat().st_size
    assert ratio >= 2.5, f"int8 TFLite only {ratio:.2f}x smaller"  # a cut MobileNetV2 of 2 MB: 2.7x here
    evaluated = {}
    for folder in (float_dir, int8_dir):  # safe format: no --trust-model
        code, text = run(capsys, "evaluate", str(folder), str(small_sample), "--split", "val", "--json")
        assert code == 0, text
        evaluated[folder.name] = json.loads(text)["accuracy"]
    assert evaluated["int8"] == pytest.approx(metadata["quantization"]["int8"]["val_accuracy"])
    assert evaluated["float"] == pytest.approx(metadata["quantization"]["float"]["val_accuracy"])
    code, text = run(capsys, "predict", str(int8_dir), str(small_sample / "cat"), "--json", "--top", "1")
    assert code == 0, text
    assert json.loads(text)[0]["top"][0]["label"] in json.loads((int8_dir / "labels.json").read_text())


def test_a_tflite_file_with_tensorflow_ops_does_not_load(keras_study, tmp_path, capsys, monkeypatch):
    """A model calling TensorFlow's ReadFile: the interpreter has no such operator, so predict refuses it."""
    import tensorflow as tf

    monkeypatch.setenv("AUTOML_TL_STUDIES", str(keras_study))
    folder = tmp_path / "export"
    assert run(capsys, "export", "kt", "--format", "tflite", "-o", str(folder))[0] == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")

    class ReadsAFile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def serve(self, images):
            length = tf.cast(tf.strings.length(tf.io.read_file(str(secret))), tf.float32)
            return tf.nn.softmax(tf.reduce_mean(images, axis=[1, 2]) * length)

    module = ReadsAFile()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    (folder / "model.tflite").write_bytes(converter.convert())
    labels = json.loads((folder / "labels.json").read_text())
    (folder / "labels.json").write_text(json.dumps(labels[:3]))  # the stand-in model has three outputs
    sample_image = tmp_path / "image.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(sample_image)
    code, text = run(capsys, "predict", str(folder), str(sample_image))
    assert code == 2 and "model.tflite" in text and "cannot be loaded" in text, text
    shutil.rmtree(folder)
