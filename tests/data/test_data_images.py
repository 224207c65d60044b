"""Safe decoding of untrusted image bytes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from automl_tl.data.images import (
    DEFAULT_MAX_PIXELS,
    BadImage,
    decode_image,
    is_image_file,
    to_model_input,
)
from tests.support.images import image_bytes, solid_png


@pytest.mark.parametrize("name", ["a.jpg", "a.JPG", "b.jpeg", "b.JPEG", "c.png", "c.PnG", "dir/x.Jpg"])
def test_image_suffixes_match_in_any_case(name: str) -> None:
    assert is_image_file(Path(name))


@pytest.mark.parametrize("name", [".DS_Store", ".hidden.jpg", "notes.txt", "a.gif", "a.jpg.bak", "png"])
def test_hidden_and_other_files_are_not_images(name: str) -> None:
    assert not is_image_file(Path(name))


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGB", "PNG"),
        ("L", "PNG"),
        ("P", "PNG"),
        ("RGBA", "PNG"),
        ("LA", "PNG"),
        ("1", "PNG"),
        ("I;16", "PNG"),
        ("RGB", "JPEG"),
        ("L", "JPEG"),
        ("CMYK", "JPEG"),
    ],
)
def test_every_mode_decodes_to_square_rgb(mode: str, fmt: str) -> None:
    out = decode_image(image_bytes(mode, (20, 13), fmt), 16)
    assert out.shape == (16, 16, 3)
    assert out.dtype == np.uint8


def test_palette_with_transparency_goes_through_rgba() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([10, 20, 30] + [200, 0, 0] * 255)
    image.putpixel((0, 0), 1)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=0)
    out = decode_image(buffer.getvalue(), 4)
    assert tuple(out[0, 0]) == (200, 0, 0)
    assert tuple(out[3, 3]) == (255, 255, 255)  # fully transparent: laid over white


def test_sixteen_bit_range_is_scaled_not_clipped() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(buffer, format="PNG")
    out = decode_image(buffer.getvalue(), 4)
    assert np.all(out == 128)


def test_solid_colour_survives_and_non_square_is_stretched() -> None:
    out = decode_image(solid_png((255, 0, 0), size=(30, 7)), 9)
    assert out.shape == (9, 9, 3)
    assert np.all(out == np.array([255, 0, 0], dtype=np.uint8))


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    out = decode_image(image_bytes("RGB", (640, 480), "JPEG"), 32)
    assert out.shape == (32, 32, 3)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (20, 10), (255, 0, 0))
    image.paste((0, 0, 255), (10, 0, 20, 10))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    out = decode_image(buffer.getvalue(), 10)
    assert out[5, 1, 2] > 200 and out[5, 1, 0] < 60  # left is now blue
    assert out[5, 8, 0] > 200 and out[5, 8, 2] < 60  # right is now red


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_bad(fmt: str) -> None:
    data = image_bytes("RGB", (64, 64), fmt)
    with pytest.raises(BadImage):
        decode_image(data[: len(data) // 2], 8)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_garbage_is_bad(data: bytes) -> None:
    with pytest.raises(BadImage):
        decode_image(data, 8)


def test_unsupported_format_is_bad_even_if_pillow_reads_it() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="TIFF")
    with pytest.raises(BadImage, match="not a JPEG or PNG"):
        decode_image(buffer.getvalue(), 4)


def test_pixel_cap_is_checked_before_decoding() -> None:
    data = image_bytes("RGB", (100, 50), "PNG")
    with pytest.raises(BadImage, match="100x50 pixels is over the cap"):
        decode_image(data, 8, max_pixels=4999)
    assert decode_image(data, 8, max_pixels=5000).shape == (8, 8, 3)


def test_pillow_global_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(BadImage):
        decode_image(image_bytes(), 8, max_pixels=10)
    decode_image(image_bytes(), 8, max_pixels=DEFAULT_MAX_PIXELS * 10)
    assert Image.MAX_IMAGE_PIXELS == before


def test_to_model_input_scales_to_unit_floats() -> None:
    batch = np.array([[[[0, 128, 255]]]], dtype=np.uint8)
    out = to_model_input(batch)
    assert out.dtype == np.float32
    assert out.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(out[0, 0, 0], [0.0, 128 / 255, 1.0], rtol=1e-6)
