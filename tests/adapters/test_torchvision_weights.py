"""The torchvision backbones name the weights they mean and state how those weights were evaluated."""

from __future__ import annotations

import pytest

pytest.importorskip("torchvision")

from torchvision.models import get_model_weights  # noqa: E402

from automl_tl_torch.backbones import torchvision_backbones  # noqa: E402


def spec_named(name: str):
    return next(spec for spec in torchvision_backbones() if spec.name == name)


def test_resnet50_uses_torchvisions_better_v2_weights():
    spec = spec_named("resnet50")
    assert "IMAGENET1K_V2" in spec.weights.source, spec.weights.source
    assert get_model_weights("resnet50").DEFAULT.name == "IMAGENET1K_V2"


def test_resnet50_is_fed_as_its_v2_weights_were_evaluated():
    """V2's evaluation transform is resize 232, centre crop 224, bilinear (not V1's 256 / 224)."""
    transform = get_model_weights("resnet50")["IMAGENET1K_V2"].transforms()
    spec = spec_named("resnet50")
    assert spec.crop_pct == pytest.approx(transform.crop_size[0] / transform.resize_size[0])
    assert spec.interpolation == transform.interpolation.value
    assert spec.resize_rule().token() == "crop:0.965517:bilinear"
