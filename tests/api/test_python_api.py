"""The Python API's own behaviour, without a kernel: options as the CLI reads them, the same refusals, images
in memory, pictures, and studies opened read-only."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import automl_tl
from automl_tl.api.options import command_args
from automl_tl.errors import UserError


def test_keywords_are_read_as_the_cli_reads_its_flags() -> None:
    args = command_args("search", data="photos", image_size="32", epochs=2, cv="off", resize="pad", smart_start=False,
                        backbones=["mobilenet*", "resnet18"], plugin="mine.py")
    assert (args.image_size, args.epochs, args.cv, args.resize_given) == (32, 2, "off", "pad")
    assert args.smart_start is False and args.truncation is True  # a default the call left alone
    assert args.backbones == "mobilenet*,resnet18" and args.plugin == ["mine.py"]
    assert args.func.__name__ == "cmd_search" and args.data == "photos"
    assert command_args("search", image_size="auto").image_size == "auto"


@pytest.mark.parametrize(("given", "said"), [
    ({"epochs": "many"}, "epochs='many'"),
    ({"pruner": "nope"}, "choose one of"),
    ({"smart_start": "yes"}, "True or False"),
    ({"batch": 3}, "no option batch"),
    ({"seed": True}, "not True or False"),
])
def test_a_bad_keyword_is_one_paragraph_that_names_it(given: dict, said: str) -> None:
    with pytest.raises(UserError, match=said.replace("(", r"\(").replace("*", r"\*")):
        command_args("search", **given)


def test_export_needs_its_required_options() -> None:
    with pytest.raises(UserError, match="give format"):
        command_args("export", name="s", output="out")


def test_search_refuses_with_the_clis_paragraph(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--trials 0: the study's total number of finished trials must be at least 1"):
        automl_tl.search(tmp_path, trials=0)


def test_opening_a_missing_study_is_refused_and_writes_nothing(isolated_studies: Path) -> None:
    with pytest.raises(UserError, match="No study named 'absent'"):
        automl_tl.open_study("absent")
    assert not isolated_studies.exists()


def test_a_storage_password_stays_out_of_the_repr_and_the_errors(tmp_path: Path) -> None:
    assert "hunter2" not in repr(automl_tl.Study("s", "postgresql://me:hunter2@db/optuna"))
    malformed = f"sqlite:///{tmp_path}/x:hunter2@/db.db"  # the password ends up in the path the error names
    with pytest.raises(UserError) as read:
        automl_tl.Study("x", storage=malformed).leaderboard()
    with pytest.raises(UserError) as searched:
        automl_tl.search(tmp_path, storage=malformed, trials=1)
    assert "hunter2" not in str(read.value) and "hunter2" not in str(searched.value)


def test_an_export_in_a_format_that_runs_code_opens_because_this_call_wrote_it(small_cnn_exports: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(small_cnn_exports / "studies"))
    model = automl_tl.open_study("mf").export(tmp_path / "ts", format="torchscript")
    assert model.metadata["format"] == "torchscript" and len(model.predict(np.zeros((20, 20, 3), np.uint8))) == 1
    with pytest.raises(UserError, match="trust"):
        automl_tl.load_model(tmp_path / "ts")  # a folder found on disk still asks


def test_a_model_predicts_images_in_memory_as_it_predicts_their_files(small_cnn_exports: Path, small_sample: Path) -> None:
    from PIL import Image

    model = automl_tl.load_model(small_cnn_exports / "onnx")
    files = sorted(small_sample.rglob("*.png"))[:3]
    from_files = model.predict(files, top=2)
    pictures = [Image.open(f) for f in files]
    from_memory = model.predict(pictures, top=2)
    from_arrays = model.predict([np.asarray(p.convert("RGB")) for p in pictures], top=2)
    for a, b, c in zip(from_files, from_memory, from_arrays, strict=True):
        assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]] == [t["label"] for t in c["top"]]
        assert a["top"][0]["probability"] == pytest.approx(c["top"][0]["probability"], abs=1e-5)
    assert from_memory[0]["path"] == "<image 0>"
    with pytest.raises(UserError, match="uint8"):
        model.predict(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(UserError, match="not both"):
        model.predict([files[0], pictures[0]])
    score = model.evaluate(small_sample, split="val")
    assert score["images"] > 0 and 0 <= score["accuracy"] <= 1


def test_a_folder_that_is_no_export_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        automl_tl.load_model(tmp_path)


def test_study_tables_and_pictures(small_cnn_exports: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(small_cnn_exports / "studies"))
    study = automl_tl.open_study("mf")
    assert study.best_trial.number == 0
    monkeypatch.setitem(sys.modules, "pandas", None)  # without pandas: records
    rows = study.leaderboard()
    assert isinstance(rows, list) and rows[0]["trial"] == 0 and rows[0]["backbone"] == "small_cnn"
    picture = study.plot_history()
    assert picture._repr_png_().startswith(b"\x89PNG")
    saved = picture.save(tmp_path / "history")
    assert saved.name == "history.png" and picture.save(saved) == saved  # its own file is replaced
    (tmp_path / "mine.png").write_bytes(b"\x89PNG not ours")
    with pytest.raises(UserError):
        picture.save(tmp_path / "mine.png")
    assert (tmp_path / "mine.png").read_bytes() == b"\x89PNG not ours"
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        picture.save(tmp_path / "folder")  # refused, not written beside it as folder.png
    assert not (tmp_path / "folder.png").exists()
    with pytest.raises(UserError, match="too few completed trials"):
        study.plot_importances()  # one trial cannot tell which parameter matters


def test_a_prediction_on_an_image_far_smaller_than_the_input_carries_a_note(small_cnn_exports: Path, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from automl_tl.cli import main

    model = automl_tl.load_model(small_cnn_exports / "onnx")  # trained at 16 px: under 4 px is far smaller
    tiny, fair = model.predict([np.zeros((3, 5, 3), np.uint8), np.zeros((16, 20, 3), np.uint8)])
    assert "5x3 px, far smaller than the model's 16 px input" in tiny["note"] and "note" not in fair
    Image.new("RGB", (3, 3)).save(tmp_path / "thumb.png")
    assert main(["predict", str(small_cnn_exports / "onnx"), str(tmp_path / "thumb.png")]) == 0
    assert "note 3x3 px, far smaller" in " ".join(capsys.readouterr().out.split())
