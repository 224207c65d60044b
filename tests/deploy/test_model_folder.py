"""A model folder is untrusted input: predict and evaluate check it before anything in it is loaded.

One real torch study (the from-scratch small_cnn, one trial) is exported once as ONNX and once as
TorchScript; each case copies an export, damages it, and runs the CLI in-process. Every case must
exit 2 with a message that names the file and the field, never a traceback.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automl_tl.cli import main


@pytest.fixture
def exported(small_cnn_exports: Path) -> Path:
    """``root/studies`` (the study "mf"), ``root/onnx`` and ``root/torchscript``: its two exports."""
    return small_cnn_exports


@pytest.fixture
def image(small_sample: Path) -> str:
    return str(next((small_sample / "cat").glob("*.png")))


def copy_export(exported: Path, fmt: str, tmp_path: Path) -> Path:
    target = tmp_path / f"model_{fmt}"
    shutil.copytree(exported / fmt, target)
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def edit_json(name: str, change: Callable[[Any], Any]) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        path = folder / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return mutate


def write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def delete(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def with_field(field: str, value: Any) -> Callable[[Any], Any]:
    return lambda data: {**data, field: value}


def without(field: str) -> Callable[[Any], Any]:
    return lambda data: {k: v for k, v in data.items() if k != field}


def truncate(name: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        raw = (folder / name).read_bytes()
        (folder / name).write_bytes(raw[: len(raw) // 3])
    return mutate


def link_outside(name: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        outside = folder.parent / f"outside_{name}"
        shutil.copy(folder / name, outside)
        (folder / name).unlink()
        (folder / name).symlink_to(outside)
    return mutate


def padded(name: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        path = folder / name
        path.write_text(path.read_text() + " " * (2 << 20))
    return mutate


# (case, mutation, what the message must contain)
BROKEN = [
    ("metadata not JSON", write("metadata.json", b"{not json"), ["metadata.json", "not valid JSON"]),
    ("metadata not UTF-8", write("metadata.json", b'{"framework": "\xff\xfe"}'), ["metadata.json", "UTF-8"]),
    ("metadata a list", write("metadata.json", b"[1, 2]"), ["metadata.json", "JSON object"]),
    ("metadata linked outside", link_outside("metadata.json"), ["metadata.json", "outside the model folder"]),
    ("no framework", edit_json("metadata.json", without("framework")), ["metadata.json", '"framework"', "missing"]),
    ("framework a list", edit_json("metadata.json", with_field("framework", ["torch"])), ["metadata.json", '"framework"']),
    ("unknown format", edit_json("metadata.json", with_field("format", "pickle")), ["metadata.json", '"format"', "pickle"]),
    ("format of another framework", edit_json("metadata.json", with_field("framework", "keras")),
     ["metadata.json", '"format"', "keras plugin"]),
    ("no format", edit_json("metadata.json", without("format")), ["metadata.json", '"format"', "missing"]),
    ("no model_file", edit_json("metadata.json", without("model_file")), ["metadata.json", '"model_file"', "missing"]),
    ("model_file a number", edit_json("metadata.json", with_field("model_file", 5)), ["metadata.json", '"model_file"']),
    ("model_file absent", edit_json("metadata.json", with_field("model_file", "gone.onnx")),
     ["metadata.json", '"model_file"', "gone.onnx"]),
    ("model_file the folder", edit_json("metadata.json", with_field("model_file", ".")),
     ["metadata.json", '"model_file"', "folder itself"]),
    ("model truncated", truncate("model.onnx"), ["model.onnx", "cannot be loaded"]),
    ("model not ONNX", write("model.onnx", b"hello"), ["model.onnx", "cannot be loaded"]),
    ("no labels", delete("labels.json"), ["labels.json", "missing"]),
    ("labels a dict", write("labels.json", b'{"0": "cat"}'), ["labels.json", "list"]),
    ("one label", write("labels.json", b'["cat"]'), ["labels.json", "at least two"]),
    ("duplicate labels", edit_json("labels.json", lambda names: [names[0], *names[:-1]]), ["labels.json", "twice"]),
    ("empty label", edit_json("labels.json", lambda names: [*names[:3], "", *names[4:]]), ["labels.json", "label 3"]),
    ("label a number", edit_json("labels.json", lambda names: [*names[:-1], 7]), ["labels.json", "label 9"]),
    ("labels nested too deep", write("labels.json", b"[" * 100_000 + b"]" * 100_000), ["labels.json", "nests too deeply"]),
    ("fewer labels than outputs", edit_json("labels.json", lambda names: names[:3]),
     ["model.onnx", "labels.json", "10 outputs per image", "3 labels"]),
    ("no preprocessing", delete("preprocessing.json"), ["preprocessing.json", "missing"]),
    ("huge preprocessing", padded("preprocessing.json"), ["preprocessing.json", "larger than"]),
    ("image_size 60000", edit_json("preprocessing.json", with_field("image_size", 60_000)),
     ["preprocessing.json", '"image_size"', "16 to 1024"]),
    ("image_size a string", edit_json("preprocessing.json", with_field("image_size", "48")),
     ["preprocessing.json", '"image_size"']),
    ("image_size true", edit_json("preprocessing.json", with_field("image_size", True)), ["preprocessing.json", '"image_size"']),
    ("image_size the model refuses", edit_json("preprocessing.json", with_field("image_size", 32)),
     ["model.onnx", "32x32", "preprocessing.json", '"image_size"']),
    ("mean of two", edit_json("preprocessing.json", with_field("mean", [0.5, 0.5])), ["preprocessing.json", '"mean"']),
    ("std zero", edit_json("preprocessing.json", with_field("std", [0.5, 0.0, 0.5])), ["preprocessing.json", '"std"', "above zero"]),
    ("std NaN", edit_json("preprocessing.json", with_field("std", [0.5, float("nan"), 0.5])), ["preprocessing.json", '"std"']),
    ("preprocessing a string", write("preprocessing.json", b'"16 px"'), ["preprocessing.json", "JSON object"]),
]


@pytest.mark.parametrize("mutate, expected", [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_predict_refuses_a_broken_model_folder_naming_the_file_and_field(exported, tmp_path, capsys, image, mutate, expected):
    folder = copy_export(exported, "onnx", tmp_path)
    mutate(folder)
    code, text = run(capsys, "predict", str(folder), image, "--json")
    assert code == 2, text
    assert "Traceback" not in text
    flat = " ".join(text.split())  # rich wraps long lines
    for part in expected:
        assert part in flat, (part, flat)


def test_evaluate_checks_the_folder_before_reading_any_data(exported, tmp_path, capsys):
    folder = copy_export(exported, "onnx", tmp_path)
    edit_json("preprocessing.json", with_field("image_size", "48"))(folder)
    code, text = run(capsys, "evaluate", str(folder), str(tmp_path / "no_such_data"))
    assert code == 2 and '"image_size"' in text and "preprocessing.json" in text and "no_such_data" not in text


def test_a_model_file_outside_the_folder_is_never_loaded(exported, tmp_path, capsys, image):
    """``..``, an absolute path and a link out of the folder all name a real, loadable model elsewhere."""
    folder = copy_export(exported, "onnx", tmp_path)
    assert run(capsys, "predict", str(folder), image)[0] == 0  # the intact copy works
    outside = tmp_path / "elsewhere.onnx"
    shutil.copy(folder / "model.onnx", outside)
    for name in ("../elsewhere.onnx", str(outside)):
        edit_json("metadata.json", with_field("model_file", name))(folder)
        code, text = run(capsys, "predict", str(folder), image)
        assert code == 2 and "Traceback" not in text, text
        assert "metadata.json" in text and '"model_file"' in text and "folder may only name files inside itself" in " ".join(text.split())
    edit_json("metadata.json", with_field("model_file", "model.onnx"))(folder)
    (folder / "model.onnx").unlink()
    (folder / "model.onnx").symlink_to(outside)
    code, text = run(capsys, "predict", str(folder), image)
    assert code == 2 and '"model_file"' in text and "leads outside" in " ".join(text.split()), text


def test_torchscript_loads_only_with_trust_model(exported, tmp_path, capsys, image, small_sample):
    folder = copy_export(exported, "torchscript", tmp_path)
    for command in (["predict", str(folder), image], ["evaluate", str(folder), str(small_sample)]):
        code, text = run(capsys, *command)
        flat = " ".join(text.split())
        assert code == 2 and "Traceback" not in text, text
        assert "metadata.json" in flat and '"format"' in flat and "can run code" in flat
        assert "--trust-model" in flat and "onnx" in flat and "Nothing was loaded" in flat
    code, text = run(capsys, "predict", str(folder), image, "--json", "--trust-model")
    assert code == 0, text
    (result,) = json.loads(text)
    assert result["path"] == image and len(result["top"]) == 3
    code, text = run(capsys, "evaluate", str(folder), str(small_sample), "--json", "--trust-model")
    assert code == 0 and json.loads(text[text.index("{"):])["split"] == "test", text


def test_torchscript_with_trust_still_checks_the_file(exported, tmp_path, capsys, image):
    folder = copy_export(exported, "torchscript", tmp_path)
    truncate("model.torchscript.pt")(folder)
    code, text = run(capsys, "predict", str(folder), image, "--trust-model")
    assert code == 2 and "Traceback" not in text and "model.torchscript.pt" in text and "cannot be loaded" in text, text


def bogus_savedmodel(exported: Path, tmp_path: Path) -> Path:
    """A folder that claims to hold a Keras SavedModel: the one field that once bypassed safe mode."""
    folder = copy_export(exported, "onnx", tmp_path)
    (folder / "model.onnx").unlink()
    (folder / "savedmodel").mkdir()
    (folder / "savedmodel" / "saved_model.pb").write_bytes(b"not a graph")
    edit_json("metadata.json", lambda m: {**m, "framework": "keras", "format": "savedmodel", "model_file": "savedmodel"})(folder)
    return folder


def test_a_savedmodel_is_refused_without_trust_before_tensorflow_is_touched(exported, tmp_path, capsys, image):
    folder = bogus_savedmodel(exported, tmp_path)
    tensorflow_was_loaded = "tensorflow" in sys.modules
    code, text = run(capsys, "predict", str(folder), image)
    flat = " ".join(text.split())
    assert code == 2 and "Traceback" not in text, text
    assert "metadata.json" in flat and "savedmodel" in flat and "--trust-model" in flat and "can run code" in flat
    assert "keras or tflite format" in flat  # what to ask for instead
    if not tensorflow_was_loaded:
        assert "tensorflow" not in sys.modules, "the refusal must come before anything is loaded"


def test_a_bogus_savedmodel_with_trust_is_exit_2_not_a_traceback(exported, tmp_path, capsys, image):
    pytest.importorskip("tensorflow", reason="the keras extra is not installed")
    folder = bogus_savedmodel(exported, tmp_path)
    code, text = run(capsys, "predict", str(folder), image, "--trust-model")
    assert code == 2 and "Traceback" not in text, text
    assert "savedmodel" in text and "cannot be loaded" in text


def damage_weights(weights: Path, how: str) -> None:
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:200])
    else:  # objects that are not tensors: torch's weights-only loader refuses them
        import torch

        torch.save({"head.0.weight": Path("/etc/passwd")}, weights)


@pytest.mark.parametrize("how", ["truncated", "not tensors"])
def test_export_of_a_trial_with_damaged_weights_names_the_file(exported, tmp_path, capsys, monkeypatch, how):
    studies = tmp_path / "studies_copy"
    shutil.copytree(exported / "studies", studies)
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(studies))
    (weights,) = studies.rglob("weights.pt")
    damage_weights(weights, how)
    out = tmp_path / "out"
    code, text = run(capsys, "export", "mf", "--format", "onnx", "-o", str(out), "--artifacts", str(studies))
    assert code == 2 and "Traceback" not in text, text
    assert "weights.pt" in text and "--trial" in text
    assert not out.exists()
