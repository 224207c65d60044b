"""Safe image decoding: bytes in, a square uint8 RGB array out, made square by a ``ResizeRule``.

Every image a user hands us is untrusted. ``decode_image`` reads only the header
before checking the pixel count against a cap, accepts only a few common formats
(sniffed from the bytes, not the file name), and turns every decoder failure into
``BadImage`` so that the caller can skip the file and say why.
"""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from automl_tl.types import ResizeRule

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
"""File name endings that count as images when discovering data (case-insensitive)."""

DEFAULT_MAX_PIXELS = 40_000_000
"""Images with more pixels than this (width * height) are refused before decoding."""

DECODER_VERSION = "pil-rgb-2"
"""Names how ``decode_image`` turns bytes into pixels (with the resize rule's token, part of every
decoded-image and activation key)."""

DECODE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # JPEG covers MPO (camera multi-picture JPEG)
"""Formats the decoder will parse, whatever the file is called (a renamed WebP still works)."""

# Everything Pillow's plugins are known to raise on corrupt or hostile input.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    KeyError,
    ZeroDivisionError,
    Image.DecompressionBombError,
)

# EXIF orientation tag -> the transpose that shows the image upright.
_ORIENTATION_TAG = 0x0112
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_WHITE = (255, 255, 255)
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


class BadImage(Exception):
    """A file that cannot be used as an image; the message is a short reason."""


def is_image_file(path: Path) -> bool:
    """True for a non-hidden file name ending in one of ``IMAGE_SUFFIXES`` (any case)."""
    name = Path(path).name
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def decode_image(data: bytes, image_size: int, max_pixels: int = DEFAULT_MAX_PIXELS,
                 rule: ResizeRule | None = None) -> np.ndarray:
    """Decode ``data`` into a uint8 array of shape (image_size, image_size, 3), RGB.

    The width * height from the header is checked against ``max_pixels`` before any
    pixel is decoded. Grayscale, palette, 16-bit, CMYK and images with alpha become
    RGB (transparent areas are laid over white); the EXIF orientation is applied first;
    then ``rule`` (by default: keep the aspect ratio, centre-crop) makes the square. A
    JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale that still covers the output
    (libjpeg's DCT scaling, through Pillow's draft mode). Raises ``BadImage`` for a
    corrupt, truncated, oversized or unsupported file.
    """
    return decode_image_and_size(data, image_size, max_pixels, rule)[0]


def decode_image_and_size(data: bytes, image_size: int, max_pixels: int = DEFAULT_MAX_PIXELS,
                          rule: ResizeRule | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """``decode_image``, and the (width, height) from the image's header (before the EXIF orientation)."""
    if image_size < 1:
        raise ValueError(f"image_size must be at least 1, got {image_size}")
    rule = rule or ResizeRule()
    try:
        with Image.open(io.BytesIO(data), formats=DECODE_FORMATS) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise BadImage(f"{width}x{height} pixels is over the cap of {max_pixels:,} pixels")
            orientation = _orientation(im)
            if im.format in ("JPEG", "MPO"):
                scale = _needed_scale(width, height, image_size, rule)
                im.draft("RGB" if im.mode == "RGB" else None, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
            rgb = _to_rgb(im)
            if orientation is not None:
                rgb = rgb.transpose(orientation)
            array = np.asarray(_square(rgb, image_size, rule), dtype=np.uint8)
    except BadImage:
        raise
    except Image.DecompressionBombError:
        raise BadImage("too many pixels: over Pillow's decompression-bomb limit") from None
    except Image.UnidentifiedImageError:
        raise BadImage("not a JPEG or PNG image (unknown or corrupt header)") from None
    except _DECODE_ERRORS as exc:
        raise BadImage(f"corrupt or truncated image ({type(exc).__name__}: {exc})") from None
    if array.shape != (image_size, image_size, 3):  # defensive: Pillow should never do this
        raise BadImage(f"decoded to an unexpected shape {array.shape}")
    return array, (width, height)


def _needed_scale(width: int, height: int, size: int, rule: ResizeRule) -> float:
    """How much of the full resolution the output needs (the same for either orientation)."""
    if rule.mode == "crop":
        return size / (min(width, height) * rule.crop_pct)
    if rule.mode == "pad":
        return size / max(width, height)
    return max(size / width, size / height)


def _square(rgb: Image.Image, size: int, rule: ResizeRule) -> Image.Image:
    """``rgb`` made an RGB ``size`` square by ``rule``, in one resampling pass."""
    resample = _RESAMPLE[rule.interpolation]
    width, height = rgb.size
    if rule.mode == "stretch":
        return rgb if rgb.size == (size, size) else rgb.resize((size, size), resample)
    if rule.mode == "crop":
        side = min(width, height) * rule.crop_pct  # the centre square of the source that becomes the output
        left, top = (width - side) / 2.0, (height - side) / 2.0
        if side == width == height == size:
            return rgb
        return rgb.resize((size, size), resample, box=(left, top, left + side, top + side))
    scale = size / max(width, height)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.new("RGB", (size, size), _WHITE)
    canvas.paste(rgb if rgb.size == inner else rgb.resize(inner, resample), ((size - inner[0]) // 2, (size - inner[1]) // 2))
    return canvas


def to_model_input(images_uint8: np.ndarray) -> np.ndarray:
    """Scale uint8 images (N, H, W, 3) to float32 in [0, 1]; mean/std is the model's job."""
    return np.asarray(images_uint8, dtype=np.float32) / np.float32(255.0)


def _orientation(im: Image.Image) -> Image.Transpose | None:
    """The transpose that the EXIF orientation tag asks for, if any."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG)
    except _DECODE_ERRORS:
        return None  # a broken EXIF block is no reason to lose the image
    return _ORIENTATION.get(value) if isinstance(value, int) else None


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode we may meet to 8-bit RGB."""
    mode = im.mode
    if mode == "RGB":
        im.load()
        return im
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_wide_to_uint8(np.asarray(im), sixteen_bit=mode.startswith("I;16")), "L").convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def _wide_to_uint8(array: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """Wide grayscale to uint8: a 16-bit range (known, or guessed from values over 255) is scaled down."""
    values = array.astype(np.float64)
    if sixteen_bit or (values.size and float(values.max()) > 255.0):
        values = values * (255.0 / 65535.0)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
