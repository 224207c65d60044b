"""Images keep their aspect ratio: crop, pad and stretch on 3:1 and 1:3 photos, EXIF rotation, transparency."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from automl_tl.data.images import decode_image
from automl_tl.types import BackboneSpec, Preprocessing, ResizeRule, rule_from_dict

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def thirds(width: int, height: int, fmt: str = "PNG", exif_orientation: int | None = None) -> bytes:
    """An image cut into three equal bands along its longer side: blue, red, green."""
    array = np.zeros((height, width, 3), np.uint8)
    if width >= height:
        band = width // 3
        array[:, :band], array[:, band : 2 * band], array[:, 2 * band :] = BLUE, RED, GREEN
    else:
        band = height // 3
        array[:band], array[band : 2 * band], array[2 * band :] = BLUE, RED, GREEN
    image = Image.fromarray(array)
    buffer = io.BytesIO()
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buffer, fmt, exif=exif, quality=95)
    else:
        image.save(buffer, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def close(pixel: np.ndarray, color: tuple[int, int, int], tol: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(color)) <= tol))


@pytest.mark.parametrize("width,height", [(300, 100), (100, 300)])
def test_crop_keeps_the_centre_and_never_stretches(width: int, height: int) -> None:
    out = decode_image(thirds(width, height), 32, rule=ResizeRule("crop"))
    # The centre square of a 3:1 image is its middle band: all red, no stretched blue or green.
    assert out.shape == (32, 32, 3)
    # (the outermost output pixel may blend with the band beside it, as resize-then-crop does)
    assert close(out[1, 1], RED) and close(out[30, 30], RED) and close(out[16, 16], RED)


@pytest.mark.parametrize("width,height", [(300, 100), (100, 300)])
def test_pad_keeps_everything_and_pads_with_white(width: int, height: int) -> None:
    out = decode_image(thirds(width, height), 30, rule=ResizeRule("pad"))
    assert close(out[15, 15], RED)
    if width > height:  # a band of 10 rows in the middle; white above and below
        assert close(out[0, 15], (255, 255, 255)) and close(out[15, 1], BLUE) and close(out[15, 28], GREEN)
    else:
        assert close(out[15, 0], (255, 255, 255)) and close(out[1, 15], BLUE) and close(out[28, 15], GREEN)


def test_stretch_squeezes_the_whole_image_into_the_square() -> None:
    out = decode_image(thirds(300, 100), 30, rule=ResizeRule("stretch"))
    assert close(out[15, 2], BLUE) and close(out[15, 15], RED) and close(out[15, 27], GREEN)
    assert close(out[0, 15], RED)  # no padding


def test_crop_pct_keeps_only_the_centre_share() -> None:
    # A square: a thin blue border around red; crop_pct 0.875 cuts it away, crop_pct 1 keeps it.
    array = np.full((160, 160, 3), BLUE, np.uint8)
    array[4:156, 4:156] = RED
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    full = decode_image(buffer.getvalue(), 32, rule=ResizeRule("crop", 1.0))
    cut = decode_image(buffer.getvalue(), 32, rule=ResizeRule("crop", 0.875))
    assert close(full[0, 0], BLUE, 40) and close(cut[0, 0], RED) and close(cut[31, 31], RED)


def test_exif_rotation_is_applied_before_the_crop() -> None:
    # Stored 300x100 with orientation 6 (rotate 90 degrees clockwise): shown upright it is 100x300.
    out = decode_image(thirds(300, 100, "JPEG", exif_orientation=6), 30, rule=ResizeRule("pad"))
    assert close(out[15, 0], (255, 255, 255), 20)  # padded left and right: the upright image is tall
    assert close(out[1, 15], BLUE, 40) and close(out[28, 15], GREEN, 40)


def test_transparency_is_laid_over_white_in_every_mode() -> None:
    rgba = np.zeros((60, 180, 4), np.uint8)
    rgba[:, 60:120] = (255, 0, 0, 255)  # an opaque red middle, transparent sides
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    for mode in ("crop", "pad", "stretch"):
        out = decode_image(buffer.getvalue(), 30, rule=ResizeRule(mode))
        assert close(out[15, 15], RED), mode
    stretched = decode_image(buffer.getvalue(), 30, rule=ResizeRule("stretch"))
    assert close(stretched[15, 1], (255, 255, 255))


def test_draft_decoding_of_a_large_jpeg_matches_full_decoding() -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    photo = Image.fromarray(small).resize((1600, 1200), Image.Resampling.BICUBIC)  # smooth, like a photo
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=92)
    fast = decode_image(buffer.getvalue(), 64, rule=ResizeRule("crop", 0.875)).astype(int)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:  # no draft: the full 1600x1200 decode
        side = 1200 * 0.875
        box = ((1600 - side) / 2, (1200 - side) / 2, (1600 + side) / 2, (1200 + side) / 2)
        slow = np.asarray(im.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR, box=box)).astype(int)
    assert np.abs(fast - slow).mean() < 3.0


def test_rules_are_validated_and_round_trip_through_preprocessing_json() -> None:
    with pytest.raises(ValueError):
        ResizeRule("squash")
    with pytest.raises(ValueError):
        ResizeRule("crop", 0.2)
    with pytest.raises(ValueError):
        ResizeRule("crop", 1.0, "lanczos9")
    prep = Preprocessing(224, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), ResizeRule("crop", 0.875, "bicubic"))
    again = Preprocessing.from_dict(prep.to_dict())
    assert again == prep and again.rule.token() == "crop:0.875:bicubic"
    # preprocessing.json written before rules said "bilinear, to a square": those models were fed stretched images.
    assert rule_from_dict({"image_size": 48, "resize": "bilinear, to a square"}) == ResizeRule("stretch")


def test_a_backbone_declares_how_its_weights_were_evaluated() -> None:
    spec = BackboneSpec("b", "torch", lambda pretrained: None, ("a",), 8, crop_pct=0.875, interpolation="bicubic")
    assert spec.resize_rule("crop") == ResizeRule("crop", 0.875, "bicubic")
    assert spec.resize_rule("pad") == ResizeRule("pad", 1.0, "bicubic")  # crop_pct is for crops only
    assert spec.preprocessing(160).rule == ResizeRule("crop", 0.875, "bicubic")
