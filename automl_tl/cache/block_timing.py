"""How long each block of a backbone takes to run forward, per image, measured through ``PrefixActivations``.

A trial's cost is mostly blocks run forward (prefix passes, validation) and forward and backward (the
blocks it fine-tunes), so one figure per block, for one backbone at one image size on one machine, predicts
every trial of it (automl_tl/tuning/cost.py). Each block runs on the previous block's output for a small
batch of random images: after one untimed pass (kernels chosen, buffers allocated), the median of a few
timed passes, divided by the batch. Timing stops after the first timed pass that brings the timed passes past
``PROFILE_BUDGET_S``, so a slow backbone on a busy machine costs a few seconds, not a minute.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from automl_tl.cache.activations import PrefixActivations
from automl_tl.types import SPLITS, ImageTable

PROFILE_IMAGES = 8  # images per timed batch (fewer when a batch of them would be too large, see rows_per_batch)
PROFILE_REPEATS = 3  # timed passes per block at most; the median is kept
PROFILE_BUDGET_S = 2.0  # no further timed pass once the timed ones took this long
MIN_BLOCK_SECONDS = 1e-7  # a block faster than the clock can tell (an identity) still counts as this


def probe_table(image_size: int, count: int = PROFILE_IMAGES, seed: int = 0) -> ImageTable:
    """``count`` random RGB images at ``image_size``, with no content hashes (so nothing of them is ever
    shared through the activation cache): what block profiling runs on. Blocks take as long on noise as on
    photos."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, image_size, image_size, 3), dtype=np.uint8)
    labels = np.arange(count, dtype=np.int64) % 2
    indices = np.arange(count, dtype=np.int64)
    return ImageTable(images=images, labels=labels, class_names=("a", "b"), relpaths=tuple(f"{i}.png" for i in indices),
                      splits={name: indices if name == "train" else indices[:0] for name in SPLITS})


def time_blocks(prefix: PrefixActivations, repeats: int = PROFILE_REPEATS, budget_s: float = PROFILE_BUDGET_S,
                clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds per image of each block of ``prefix`` (``prefix.n_blocks`` figures, input to output), run
    forward in inference mode by ``prefix.run_batch`` on a batch of the prefix's table (at most
    ``PROFILE_IMAGES`` rows, fewer where ``rows_per_batch`` says a batch must be smaller): one untimed pass,
    then up to ``repeats`` timed ones, fewer once they took ``budget_s`` seconds."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    count = max(1, min(PROFILE_IMAGES, prefix.rows_per_batch(), len(prefix.data.images)))
    inputs = prefix.normalise_batch(np.asarray(prefix.data.images[:count]))
    timings: list[list[float]] = [[] for _ in range(prefix.n_blocks)]
    for attempt in range(repeats + 1):  # the first pass is the warm-up: not timed
        x = inputs
        for block in range(prefix.n_blocks):
            start = clock()
            x = prefix.run_batch(x, block, block + 1)
            if attempt:
                timings[block].append(clock() - start)
        if attempt and sum(sum(times) for times in timings) >= budget_s:
            break
    return [max(statistics.median(times) / count, MIN_BLOCK_SECONDS) for times in timings]
