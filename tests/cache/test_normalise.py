"""The one normaliser every framework's model input goes through."""

from __future__ import annotations

import numpy as np
import pytest

from automl_tl.cache.activations import normalise_images
from automl_tl.data.images import to_model_input

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def plain_formula(images: np.ndarray) -> np.ndarray:
    """What the normaliser promises, written the slow way (NHWC)."""
    return (to_model_input(images) - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)


@pytest.fixture
def images() -> np.ndarray:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 6, 3), dtype=np.uint8)
    pixels[0, 0, 0] = (0, 128, 255)  # both ends of the range
    return pixels


@pytest.mark.parametrize("channels_first", [False, True])
def test_uint8_and_unit_float_images_give_the_plain_formula_to_the_bit(images, channels_first):
    expected = plain_formula(images)
    if channels_first:
        expected = expected.transpose(0, 3, 1, 2)
    for given in (images, to_model_input(images)):
        got = normalise_images(given, MEAN, STD, channels_first=channels_first)
        assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"] and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_each_channel_uses_its_own_mean_and_std(images):
    got = normalise_images(images, MEAN, STD)
    red = (np.float32(images[..., 0]) / np.float32(255.0) - np.float32(MEAN[0])) / np.float32(STD[0])
    blue = (np.float32(images[..., 2]) / np.float32(255.0) - np.float32(MEAN[2])) / np.float32(STD[2])
    np.testing.assert_array_equal(got[..., 0], red)
    np.testing.assert_array_equal(got[..., 2], blue)
