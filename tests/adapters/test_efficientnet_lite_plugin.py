"""The example third-party plugin (plugins/efficientnet_lite) gets the same treatment as a built-in backbone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("automl_tl_efficientnet_lite", reason="make setup installs plugins/efficientnet_lite")

from automl_tl_torch.testing import TorchBackboneConformance  # noqa: E402


def lite_spec():
    from automl_tl.plugin.manager import load_plugins

    return load_plugins().backbone("efficientnet_lite0")


class TestEfficientNetLiteConformance(TorchBackboneConformance):
    def make_spec(self):
        return lite_spec()


def test_the_plugin_is_found_through_its_entry_point_with_its_weights():
    out = subprocess.run([sys.executable, "-m", "automl_tl", "backbones", "efficientnet_lite*", "--json"],
                         capture_output=True, text=True, check=True).stdout
    (row,) = json.loads(out)
    assert row["plugin"] == "efficientnet_lite" and row["weights_available"] and row["feature_dim"] == 1280
    assert row["blocks"] == 18


def test_the_regrouped_network_computes_what_the_package_computes():
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from automl_tl_efficientnet_lite.plugin import build, weights_file

    package = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    package.load_state_dict(torch.load(weights_file(), weights_only=True))
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(build(True).eval()(images), package.eval().extract_features(images), atol=1e-5, rtol=1e-5)


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
