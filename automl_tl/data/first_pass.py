"""How long the first pass over a data set takes before any trial can start: decoding every image, then
one frozen backbone over all of them (smart start's profile, the first trial's activations).

Estimated before the images are read, so that a ``--timeout`` too short for the data alone is said at the
start: a few files spread over the set are decoded and timed, and the rest is scaled by file size (decode
time follows the pixels, and the bytes follow the pixels closely enough within one data set). The
backbone's pass uses ``PIXELS_PER_CORE_SECOND``, measured with MobileNetV2 (see ``resolution``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from automl_tl.data.images import BadImage, decode_image
from automl_tl.data.resolution import PIXELS_PER_CORE_SECOND
from automl_tl.runtime.threads import usable_cpus
from automl_tl.types import ImageItem, ResizeRule

__all__ = ["FirstPass", "estimate_first_pass"]

SAMPLED_FILES = 6


@dataclass(frozen=True)
class FirstPass:
    """The estimated seconds of decoding ``images`` images and of one backbone pass over them."""

    images: int
    decode_s: float
    backbone_s: float

    @property
    def seconds(self) -> float:
        return self.decode_s + self.backbone_s

    def describe(self) -> str:
        """One clause for a message."""
        return (f"decoding {self.images} images and a first backbone pass over them take about {self.seconds:.0f}s "
                f"here (decoding {self.decode_s:.0f}s, estimated from {SAMPLED_FILES} of them; the pass "
                f"{self.backbone_s:.0f}s)")


def estimate_first_pass(items: Sequence[ImageItem], image_size: int, rule: ResizeRule, max_pixels: int,
                        cores: int | None = None, sampled: int = SAMPLED_FILES) -> FirstPass:
    """The first pass over ``items`` at ``image_size`` on ``cores`` cores (default: those this process may use)."""
    cores = max(1, cores or usable_cpus())
    sizes = []
    for item in items:
        try:
            sizes.append(item.path.stat().st_size)
        except OSError:
            sizes.append(0)
    step = max(1, len(items) // max(1, sampled))
    timed_s, timed_bytes = 0.0, 0
    for index in range(0, len(items), step)[:sampled]:
        try:
            data = items[index].path.read_bytes()
            start = time.perf_counter()
            decode_image(data, image_size, max_pixels, rule)
            timed_s += time.perf_counter() - start
            timed_bytes += len(data)
        except (OSError, BadImage):
            continue
    decode_s = timed_s / timed_bytes * sum(sizes) / cores if timed_bytes else 0.0
    backbone_s = len(items) * image_size * image_size / (PIXELS_PER_CORE_SECOND * cores)
    return FirstPass(len(items), decode_s, backbone_s)
