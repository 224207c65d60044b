"""Real colour images at their own size: search the tuxpaint stamps at the automatic resolution, export,
and predict a raw 3:1 photo with the probabilities the trained model gave that file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

from automl_tl.cli import main
from bench.photo_set import stamp_classes, stamps_available, write_stamps_folder

pytestmark = pytest.mark.skipif(not stamps_available(),
                                reason="Debian's tuxpaint-stamps-default is not installed (`make stamps` installs it)")

CLASSES = ("animals_mammals", "food_fruit", "animals_birds")


def wide_photo(stamp: Path, out: Path) -> Path:
    """A 3:1 JPEG: the stamp (its transparency over white) in the middle of a wide grey-green canvas."""
    with Image.open(stamp) as im:
        rgba = im.convert("RGBA")
    side = 200
    rgba = rgba.resize((side, int(side * rgba.height / rgba.width)))
    canvas = Image.new("RGB", (600, 200), (120, 140, 110))
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    canvas.paste(white, (200, (200 - white.height) // 2))
    canvas.save(out, "JPEG", quality=90)
    return out


def test_stamps_at_auto_resolution_through_export_and_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from automl_tl.data import FolderDataset
    from automl_tl.data.loader import load_table
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.storage.artifacts import read_trial, study_folder, study_key
    from automl_tl.storage.urls import storage_url
    from automl_tl.tuning.budget import ranked_trials
    from automl_tl.types import Preprocessing, TrialConfig

    data = tmp_path / "stamps"
    write_stamps_folder(data, per_class=14, classes=CLASSES)
    wide = wide_photo(stamp_classes()[CLASSES[0]][20], data / CLASSES[0] / "wide_photo.jpg")
    assert main(["search", str(data), "--study", "stamps", "--backbones", "mobilenet_v2", "--trials", "2",
                 "--epochs", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "Input 224 px (auto: images are typically" in out, out
    export = tmp_path / "export"
    assert main(["export", "stamps", "--format", "onnx", "-o", str(export)]) == 0
    preprocessing = json.loads((export / "preprocessing.json").read_text())
    assert preprocessing["image_size"] == 224 and preprocessing["resize"] == "crop"
    assert preprocessing["crop_pct"] == 0.875 and preprocessing["interpolation"] == "bilinear"
    capsys.readouterr()
    assert main(["predict", str(export), str(wide), "--json", "--top", "3"]) == 0
    predicted = {row["label"]: row["probability"] for row in json.loads(capsys.readouterr().out)[0]["top"]}

    # The trained model (torch, from the trial's saved weights) on the row the search trained and
    # validated with: the decoded-image store's pixels of that very file.
    study = optuna.load_study(study_name="stamps", storage=storage_url("stamps", None))
    best = ranked_trials(study)[0].number
    key = study_key(study)
    directory, meta = read_trial(study_folder(Path(study.user_attrs["artifacts"]), key), best, "stamps", key)
    plugins = load_plugins()
    adapter, spec = plugins.framework(meta["framework"]), plugins.backbone(meta["backbone"])
    model = adapter.load(spec, directory, len(meta["class_names"]), TrialConfig(**meta["config"]))
    prep = Preprocessing.from_dict(meta["preprocessing"])
    table = load_table(FolderDataset().discover(str(data)), prep.image_size, rule=prep.rule, show_progress=False)
    assert table.decoded_now == 0  # the search's decoded images, read back, not decoded again
    row = table.relpaths.index(f"{CLASSES[0]}/wide_photo.jpg")
    expected = adapter.predict_loaded(model, prep, np.asarray(table.images[row : row + 1], np.float32) / 255.0)[0]
    for label, probability in predicted.items():
        assert abs(probability - float(expected[meta["class_names"].index(label)])) < 1e-4

