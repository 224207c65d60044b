"""The process's resident memory, recorded with every trial so that growth across trials is visible."""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

from automl_tl.runtime.env_vars import MALLOC_TUNING


def resident_mb() -> float:
    """Current resident set size in MB (Linux: /proc/self/statm; elsewhere the peak, as the OS reports it)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so the
    memory a finished trial used does not stay counted against the search."""
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            _glibc().malloc_trim(0)
        except (OSError, AttributeError):
            pass  # not glibc: nothing to trim


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
ALLOCATOR_ENV = MALLOC_TUNING.name


def _glibc() -> Any:
    """The C library, through which the allocator is tuned and trimmed (OSError where it is not glibc)."""
    import ctypes

    return ctypes.CDLL("libc.so.6")


def tune_allocator() -> bool:
    """Keep freed memory in the heap between training steps instead of returning it to the OS
    and faulting it in again: large mmap and trim thresholds and a generous top pad (glibc only;
    ``AUTOML_TL_MALLOC_TUNING=0`` turns it off). ``bench/cpu_settings.py`` measures the gain.
    Returns whether the settings were applied. ``release_freed_memory`` still trims between trials.

    This changes the whole process's allocator, so only the CLI's own processes call it (its
    ``main``, which workers run too); a program that imports automl-tl as a library keeps its own."""
    if MALLOC_TUNING.raw() == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = _glibc()
        settings = ((_M_MMAP_THRESHOLD, 32 * 2**20), (_M_TRIM_THRESHOLD, 1024 * 2**20), (_M_TOP_PAD, 256 * 2**20))
        return all(libc.mallopt(param, value) == 1 for param, value in settings)
    except (OSError, AttributeError):
        return False
