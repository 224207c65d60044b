"""Tiny image folders with planted faults, for the data audit's tests: smooth random pictures (so that a
resized or re-encoded copy still looks like its original), and copies placed in a chosen split."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from automl_tl.data.split import path_unit_hash


def smooth_image(seed: int, size: tuple[int, int] = (48, 48)) -> Image.Image:
    """A smooth random colour picture: 6x6 random pixels blown up bicubically (distinct seeds look distinct)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "RGB")
    return small.resize(size, Image.Resampling.BICUBIC)


def save(image: Image.Image, path: Path, fmt: str = "PNG", **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    path.write_bytes(buffer.getvalue())
    return path


def split_of(relpath: str) -> str:
    """The split a file of a large enough class lands in (``stable_split``'s first step)."""
    u = path_unit_hash(relpath)
    return "val" if u < 0.15 else "test" if u < 0.30 else "train"


def name_in(folder: str, split: str, stem: str) -> str:
    """A file name ``{stem}_N.png`` in ``folder`` whose relative path lands in ``split``."""
    for n in range(1000):
        name = f"{stem}_{n}.png"
        if split_of(f"{folder}/{name}") == split:
            return name
    raise AssertionError(f"no name lands in {split}")


def clean_folder(root: Path, classes: int = 3, per_class: int = 10, seed: int = 0) -> Path:
    """``classes`` classes of ``per_class`` distinct smooth pictures each, named so that each class has
    images in train, val and test."""
    for c in range(classes):
        for i in range(per_class):
            split = ("train", "val", "test")[i % 3] if i < 3 else "train"
            save(smooth_image(seed + 1000 * c + i), root / f"c{c}" / name_in(f"c{c}", split, f"img{i}"))
    return root
