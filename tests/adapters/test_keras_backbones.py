"""Keras backbones: declared blocks exist as clean cuts, and the ported MobileNetV2 matches torch."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

import torch  # noqa: E402

from automl_tl_keras.backbones import keras_backbones  # noqa: E402
from automl_tl_keras.model import cut_tensors, keras  # noqa: E402


@pytest.mark.parametrize("spec", keras_backbones(), ids=lambda s: s.name)
def test_declared_blocks_are_clean_cuts_with_the_declared_feature_size(spec):
    base = spec.factory(False)
    cuts = cut_tensors(base, spec.blocks)
    assert len(cuts) == len(spec.blocks) and spec.framework == "keras"
    for cut in cuts[:-1]:
        keras.Model(cut, base.output)  # raises unless every declared cut separates the graph
    middle = len(cuts) // 2
    head_part = keras.Model(base.input, cuts[middle - 1])
    tail_part = keras.Model(cuts[middle - 1], base.output)  # fails unless the cut separates the graph
    x = np.random.default_rng(0).random((1, 64, 64, 3)).astype(np.float32)
    whole = keras.ops.convert_to_numpy(base(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tail_part(head_part(x))), whole, atol=1e-4)
    assert whole.shape[-1] == spec.feature_dim


def _photo(name: str, size: int = 224) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(getattr(data, name)()).resize((size, size), Image.BILINEAR), np.float32) / 255.0


def test_ported_mobilenet_v2_gives_torchs_top5_on_real_photos():
    from automl_tl_keras.port_weights import NO_TOP_FILE, TOP_FILE, keras_models_dir, read_sidecar

    if not (keras_models_dir() / TOP_FILE).is_file() or read_sidecar(keras_models_dir() / TOP_FILE) is None:
        pytest.fail("make setup ports the MobileNetV2 weights into Keras' cache; they are missing")
    from torchvision.models import mobilenet_v2

    from automl_tl_keras.model import torch_compatible

    torch_model = mobilenet_v2(weights="IMAGENET1K_V1").eval()
    keras_model = torch_compatible(keras.applications.MobileNetV2(weights="imagenet", include_top=True))
    side = read_sidecar(keras_models_dir() / NO_TOP_FILE)
    mean, std = np.array(side["mean"], np.float32), np.array(side["std"], np.float32)
    for name in ("chelsea", "coffee", "astronaut"):
        x = (_photo(name) - mean) / std
        with torch.no_grad():
            expected = torch.softmax(torch_model(torch.from_numpy(x.transpose(2, 0, 1)[None].copy())), 1).numpy()[0]
        got = keras.ops.convert_to_numpy(keras_model(x[None], training=False))[0]
        assert list(np.argsort(-got)[:5]) == list(np.argsort(-expected)[:5]), name
        assert np.abs(got - expected).max() < 1e-3
