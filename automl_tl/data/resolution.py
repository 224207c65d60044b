"""A study's input: the resolution chosen from the data (``--image-size auto``) and the resize rule.

Every backbone of a study reads the same decoded images, so the size and the rule are decided
once per study, from the images' typical size, the backbones' native size and the time budget,
and recorded with the reason in the study and in every export's ``preprocessing.json``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

from automl_tl.data.images import DECODE_FORMATS
from automl_tl.runtime.threads import usable_cpus
from automl_tl.types import BackboneSpec, ImageItem, ResizeRule

AUTO = "auto"
NATIVE_UPSCALE = 2.0  # images at least 1/2 of the native size go to the native size (see docs/decisions.md)
AUTO_MIN_SIZE = 48  # smaller images are blown up to this: below it, a stride-32 backbone's last blocks see 1x1 maps
SIZE_STEP = 16
PROBED_IMAGES = 200  # headers read to find the typical size (header only: no pixel is decoded)
PIXELS_PER_CORE_SECOND = 0.45e6  # MobileNetV2 inference on one CPU core (measured: 0.91 Mpx/s on 2 cores at 224 px)
COLD_SHARE = 0.6  # the first pass over the data (decode + one backbone) may take this share of --timeout (decisions.md)
BUDGET_SIZES = (224, 192, 160, 128, 112, 96, 80, 64, 48)


@dataclass(frozen=True)
class Resolution:
    """The size a study trains at, and why."""

    image_size: int
    reason: str


def typical_shorter_side(items: Sequence[ImageItem], limit: int = PROBED_IMAGES) -> int | None:
    """The median shorter side of up to ``limit`` images spread over the data set, from their headers."""
    if not items:
        return None
    step = max(1, len(items) // limit)
    sides = []
    for item in items[::step][:limit]:
        try:
            with Image.open(item.path, formats=DECODE_FORMATS) as im:
                sides.append(min(im.size))
        except Exception:  # noqa: BLE001 - a bad file is reported when the images are decoded, not here
            continue
    return int(statistics.median(sides)) if sides else None


@dataclass(frozen=True)
class NativeSizes:
    """The native input sizes of a study's backbones, each with the backbones trained at it."""

    sizes: Mapping[int, tuple[str, ...]]

    @classmethod
    def of(cls, specs: Sequence[BackboneSpec]) -> NativeSizes:
        """Those of the pretrained backbones (of all, when none is pretrained; 224 px when there is none)."""
        chosen = [s for s in specs if s.pretrained] or list(specs)
        sizes: dict[int, tuple[str, ...]] = {}
        for spec in chosen:
            sizes[spec.default_image_size] = (*sizes.get(spec.default_image_size, ()), spec.name)
        return cls(sizes or {224: ()})

    @property
    def smallest(self) -> int:
        """The size a study of photos trains at; images at least half of it count as photos."""
        return min(self.sizes)

    def describe_smallest(self) -> str:
        """The size photos train at, and with several, whose it is and which backbones run below their own."""
        if len(self.sizes) == 1:
            return f"the backbones' native {self.smallest} px"
        above = "; ".join(f"{', '.join(self.sizes[size])} at {size} px" for size in sorted(self.sizes)[1:])
        return (f"{self.smallest} px, the smallest of the backbones' native sizes ({', '.join(self.sizes[self.smallest])}'s; "
                f"{above} run below theirs, at a fraction of the seconds the largest would cost every backbone; "
                f"--image-size {max(self.sizes)} runs all at the largest)")

    def describe_not_blown_up(self) -> str:
        """The native size, or the range of them, that small images are not blown up to."""
        sizes = sorted(self.sizes)
        return f"the native {sizes[0]} px" if len(sizes) == 1 else f"the backbones' native {sizes[0]}-{sizes[-1]} px"


def native_size(specs: Sequence[BackboneSpec]) -> int:
    """The native input size a study of photos trains at: the smallest of the pretrained backbones' (of all, when
    none is pretrained)."""
    return NativeSizes.of(specs).smallest


def choose_image_size(typical: int | None, native: int | NativeSizes, n_images: int, timeout: float | None,
                      cores: int | None = None) -> Resolution:
    """``--image-size auto``: the backbones' native size for photos and for images at least half of it
    (pretrained features are tuned to objects at that scale: on real colour images with a 152 px median
    shorter side, 224 px beat 160 px); smaller images at their own size (rounded up to a multiple of 16,
    at least 48), not blown up beyond need; and, under ``--timeout``,
    no larger than lets one pass over the data take ``COLD_SHARE`` (60%) of the budget on this machine's cores:
    that pass is the first head-only trial's, and every later head-only trial reads its features.

    With backbones of several native sizes (``NativeSizes``), photos and images at least half the smallest go to
    the smallest: the larger-native backbones run a little below their own size, which on the stamps and photos
    cost their fitted heads nothing measurable, while the largest would cost every pass 1.4-1.6 times the seconds
    (docs/decisions.md, issue 24)."""
    natives = native if isinstance(native, NativeSizes) else NativeSizes({native: ()})
    if typical is None:
        size, why = natives.smallest, f"image sizes unknown: {natives.describe_smallest()}"
    elif typical * NATIVE_UPSCALE >= natives.smallest:
        size, why = natives.smallest, f"images are typically {typical} px on the shorter side: {natives.describe_smallest()}"
    else:
        size = max(AUTO_MIN_SIZE, -(-typical // SIZE_STEP) * SIZE_STEP)
        size = min(size, natives.smallest)
        why = (f"images are typically {typical} px on the shorter side: {size} px, not blown up to "
               f"{natives.describe_not_blown_up()}")
    if timeout is not None and n_images > 0:
        cores = cores or usable_cpus()
        affordable = COLD_SHARE * timeout * PIXELS_PER_CORE_SECOND * cores / n_images
        if size * size > affordable:
            smaller = next((s for s in BUDGET_SIZES if s < size and s * s <= affordable), AUTO_MIN_SIZE)
            why += f"; {smaller} px so that a first pass over {n_images} images fits {COLD_SHARE:.0%} of --timeout {timeout:g}s"
            size = smaller
    return Resolution(size, why)


def study_rule(specs: Sequence[BackboneSpec], mode: str) -> tuple[ResizeRule, str]:
    """The study's resize rule for ``mode``: the backbones' own crop share and interpolation when the
    pretrained ones agree; otherwise the whole shorter side (crop share 1) and bilinear, and why."""
    stated = {(s.crop_pct, s.interpolation) for s in specs if s.pretrained and s.crop_pct is not None}
    if mode != "crop":
        interpolations = {i for _, i in stated}
        interpolation = interpolations.pop() if len(interpolations) == 1 else "bilinear"
        return ResizeRule(mode, 1.0, interpolation), f"--resize {mode}"
    if len(stated) == 1:
        crop_pct, interpolation = stated.pop()
        return ResizeRule("crop", crop_pct, interpolation), "as the pretrained weights were evaluated"
    if not stated:
        return ResizeRule("crop", 1.0, "bilinear"), "no backbone states a crop"
    return ResizeRule("crop", 1.0, "bilinear"), "the backbones state different crops: the whole shorter side"
