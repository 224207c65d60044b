"""Tiny test images and data folders, made with Pillow."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(mode: str = "RGB", size: tuple[int, int] = (12, 10), fmt: str = "PNG", seed: int = 0, **save: object) -> bytes:
    """Encoded bytes of a random-noise image in ``mode`` (any Pillow mode the format can save)."""
    rng = np.random.default_rng(seed)
    width, height = size
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    else:
        rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
        image = rgb.convert(mode) if mode not in ("RGBA", "LA") else _with_alpha(rgb, mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _with_alpha(rgb: Image.Image, mode: str) -> Image.Image:
    image = rgb.convert(mode)
    image.putalpha(128)
    return image


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (12, 10), seed: int = 0) -> Path:
    """Write a noise image to ``path``; the format comes from the suffix (.png or .jpg/.jpeg)."""
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(mode, size, fmt, seed))
    return path


def solid_png(color: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    """A one-colour RGB PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_class_tree(root: Path, counts: dict[str, int], suffix: str = ".png") -> Path:
    """``root/<class>/<i>.png`` with ``counts[class]`` images each; returns ``root``."""
    seed = 0
    for name, count in counts.items():
        for i in range(count):
            write_image(root / name / f"{i:03d}{suffix}", seed=seed)
            seed += 1
    return root
