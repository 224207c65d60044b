"""Timing a call the way a latency figure needs it: a few warm-up calls, then the median of timed ones."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["median_ms"]


def median_ms(run: Callable[[], object], warmup: int = 2, repeats: int = 10, budget_s: float = 2.0) -> float:
    """The median wall time of ``run()``, in milliseconds, over up to ``repeats`` calls after ``warmup``
    untimed ones (the first calls allocate buffers and pick kernels). Timing stops early once the timed
    calls have taken ``budget_s`` seconds, but at least three are timed (one when ``repeats`` is 1), so a
    slow model costs a few seconds, not minutes. The median, not the mean: a call that another process
    delayed does not move it."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    for _ in range(max(0, warmup)):
        run()
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats:
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
        if spent >= budget_s and len(times) >= min(3, repeats):
            break
    return statistics.median(times) * 1000.0
