"""Augmented views of an image table that the activation cache can key exactly: random-resized crops, mirrors
and mild colour changes, each fixed by the image's content hash and the view's number.

View ``k`` of an image is drawn from a generator seeded by ``"<content hash>|view<k>"``: the same pixels in every
process, trial, run and resumed study, so the frozen prefix's activations over it are cached under that name like
the plain image's (``augment: views``, automl_tl/training/augment.py). The pixels are never stored: a view's
images are computed batch by batch from the decoded images as the prefix pass (or a trial that trains every
block) reads them, so a folder of hundreds of thousands of images costs no memory or disk for its views beyond
their cached activations. Pillow, a core dependency, does the image work, so both framework plugins see the same
pixels under the same names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, cast

import numpy as np
from PIL import Image, ImageEnhance

from automl_tl.data.pages import release
from automl_tl.types import ImageTable

RECIPE = "rrc0.35-flip-jitter0.2"  # in each view's name: a changed recipe names other pixels, never stale activations
CROP_SCALE = (0.35, 1.0)  # the crop's share of the image's area (torchvision's RandomResizedCrop draws 0.08-1)
CROP_RATIO = (3 / 4, 4 / 3)  # the crop's width / height, drawn log-uniformly
JITTER = 0.2  # brightness, contrast and saturation each scaled by a factor drawn from 1 +- JITTER
CROP_TRIES = 10


@dataclasses.dataclass(frozen=True)
class ViewRecipe:
    """What view ``k`` of one image does: crop ``box`` (left, top, right, bottom; pixels of the decoded image),
    resized back to the image's size, mirrored or not, then colour factors (1: unchanged)."""

    box: tuple[int, int, int, int]
    flip: bool
    brightness: float
    contrast: float
    saturation: float


def view_name(content_hash: str, view: int) -> str:
    """The content hash of view ``view`` (1, 2, ...) of the image whose content hash is ``content_hash``."""
    return f"{content_hash}|view{view}:{RECIPE}"


def view_recipe(name: str, height: int, width: int) -> ViewRecipe:
    """The recipe for the view named ``name`` (``view_name``) of an image of ``height`` x ``width`` pixels:
    a random-resized crop as torchvision draws one (area share and log aspect ratio, up to ten tries, else
    the whole image), a mirror with chance 1/2, and colour factors; a pure function of its arguments."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))
    area = height * width
    box = (0, 0, width, height)
    for _ in range(CROP_TRIES):
        target = area * rng.uniform(*CROP_SCALE)
        ratio = math.exp(rng.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])))
        crop_w, crop_h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left, top = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
            box = (left, top, left + crop_w, top + crop_h)
            break
    flip = bool(rng.random() < 0.5)
    brightness, contrast, saturation = (float(f) for f in rng.uniform(1 - JITTER, 1 + JITTER, size=3))
    return ViewRecipe(box, flip, brightness, contrast, saturation)


def apply_recipe(image: np.ndarray, recipe: ViewRecipe) -> np.ndarray:
    """``image`` (uint8 H x W x 3) cropped, resized back to its size, mirrored and colour-changed by ``recipe``."""
    height, width = image.shape[:2]
    picture = Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.Resampling.BILINEAR,
                                                                    box=recipe.box)
    if recipe.flip:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    picture = ImageEnhance.Brightness(picture).enhance(recipe.brightness)
    picture = ImageEnhance.Contrast(picture).enhance(recipe.contrast)
    picture = ImageEnhance.Color(picture).enhance(recipe.saturation)
    return np.asarray(picture, dtype=np.uint8)


class AugmentedImages:
    """View ``view`` of every image of ``images`` (uint8 N x H x W x 3, usually a memory map), computed when
    read: indexing with an int, a slice or an index array returns those rows as a new uint8 array, each row
    made from its decoded image by the recipe its name fixes. Nothing is kept between reads."""

    def __init__(self, images: np.ndarray, names: tuple[str, ...]) -> None:
        if len(names) != len(images):
            raise ValueError(f"{len(names)} view names for {len(images)} images")
        self.images, self.names = images, names
        self.shape = tuple(images.shape)
        self.dtype = np.dtype(np.uint8)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = np.arange(len(self))[index]
        single = np.ndim(rows) == 0
        rows = np.atleast_1d(rows)
        decoded = np.asarray(self.images[rows])
        release(self.images)
        height, width = self.shape[1], self.shape[2]
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        for i, (row, image) in enumerate(zip(rows, decoded)):
            out[i] = apply_recipe(image, view_recipe(self.names[int(row)], height, width))
        return out[0] if single else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)


def augmented(data: ImageTable, view: int) -> ImageTable:
    """The table with every image replaced by its view ``view`` (1, 2, ...), computed as it is read; its content
    hashes name the view (``view_name``), so the activation cache keys it exactly. A table without content
    hashes names each row's view by the table's manifest and the row's place."""
    if view < 1:
        raise ValueError(f"augmented views are numbered from 1, not {view}")
    bases = data.content_hashes or tuple(f"{data.manifest_hash}#{i}" for i in range(len(data.images)))
    names = tuple(view_name(base, view) for base in bases)
    images = cast(np.ndarray, AugmentedImages(data.images, names))  # reads like the decoded images' array
    return dataclasses.replace(
        data,
        images=images,
        content_hashes=names if data.content_hashes else (),
        manifest_hash=view_name(data.manifest_hash, view) if data.manifest_hash else "",
    )
