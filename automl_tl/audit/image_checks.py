"""Checks of single images and of the class counts: too small, too oblong, too unevenly spread.

* Small: the shorter side under ``SMALL_FRACTION`` (a quarter) of the chosen image size, so the image is
  blown up more than four times to fill the input (each pixel becomes over 16), and the model sees mostly
  interpolation: the 16x16 thumbnail in a 224-px search. Half flagged 300 of the 567 planted stamps at
  224 px, small-ish icons that train fine; a quarter flags 84 (docs/decisions.md, "the data audit").
  Without a chosen size (``audit`` without ``--image-size``), under that fraction of the data set's
  median shorter side.
* Extreme aspect: the longer side over ``MAX_ASPECT`` times the shorter; a centre crop then keeps under a
  quarter of the image, and padding leaves most of the input blank.
* Imbalance: the largest class's images over the smallest's, flagged above ``MAX_IMBALANCE``: accuracy
  then says little about the small classes (the search's balanced accuracy still does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from automl_tl.audit.report import ExtremeAspect, Imbalance, SmallImage

SMALL_FRACTION = 0.25
MAX_ASPECT = 4.0
MAX_IMBALANCE = 10.0


def small_fraction_words() -> str:
    """``SMALL_FRACTION`` in words, for the sentences that state the rule."""
    return {0.25: "a quarter", 0.5: "half"}.get(SMALL_FRACTION, f"{SMALL_FRACTION:g}")


def small_reference(sizes: Sequence[tuple[int, int]], image_size: int | None) -> float:
    """The side a shorter side is compared with: the chosen image size, else the median shorter side."""
    if image_size is not None:
        return float(image_size)
    shorter = [min(w, h) for w, h in sizes]
    return float(np.median(shorter)) if shorter else 0.0


def small_images(files: Sequence[str], sizes: Sequence[tuple[int, int]], image_size: int | None) -> list[SmallImage]:
    """The images whose shorter side is under ``SMALL_FRACTION`` of ``small_reference``, smallest first."""
    limit = SMALL_FRACTION * small_reference(sizes, image_size)
    found = [SmallImage(f, w, h) for f, (w, h) in zip(files, sizes) if min(w, h) < limit]
    return sorted(found, key=lambda s: (min(s.width, s.height), s.file))


def extreme_aspect(files: Sequence[str], sizes: Sequence[tuple[int, int]]) -> list[ExtremeAspect]:
    """The images whose longer side is over ``MAX_ASPECT`` times the shorter, most oblong first."""
    found = [ExtremeAspect(f, w, h, round(max(w, h) / max(1, min(w, h)), 2))
             for f, (w, h) in zip(files, sizes) if max(w, h) > MAX_ASPECT * max(1, min(w, h))]
    return sorted(found, key=lambda e: (-e.ratio, e.file))


def imbalance(classes: Sequence[str], class_names: Sequence[str]) -> Imbalance:
    """Images per class (every class named, empty ones too), the largest over the smallest, and the flag."""
    counted = Counter(classes)
    counts = {name: int(counted.get(name, 0)) for name in class_names}
    if not counts:
        return Imbalance({}, 1.0, False)
    largest, smallest = max(counts.values()), min(counts.values())
    ratio = float(largest) if smallest == 0 else round(largest / smallest, 2)  # an empty class: the largest count
    return Imbalance(counts, ratio, smallest == 0 or ratio > MAX_IMBALANCE)
