"""The conformance suite's own surroundings: an activation cache folder of its own, in the dtype it asks
for, so the suite never reads entries another run (or another dtype) wrote and never writes into the
user's; and one compute thread, because the suite's tensors are tiny."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automl_tl.cache.store import CACHE_DTYPE_ENV, CACHE_GB_ENV
from automl_tl.data.image_store import CACHE_DIR_ENV

__all__ = ["suite_environment"]

THREADS_ENV = "AUTOML_TL_THREADS"  # the torch adapter's intra-op threads
SUITE_CACHE_GB = "2"  # plenty for the suite's tiny tables; a fixed size needs no look at the free disk
# On 16 px images a second thread saves nothing, and where other processes share the cores, threads that
# wait for each other made the torch checks ten times slower (115 s against 15 s measured here).
SUITE_THREADS = "1"


@contextmanager
def suite_environment(folder: Path | None = None, dtype: str = "float32") -> Iterator[Path]:
    """For the duration of the block: the activation cache in ``folder`` (a new temporary folder, removed
    afterwards, when None), keeping ``dtype``, and one compute thread. The caller's settings are restored
    afterwards. Adapters read these settings when they are made, so make them inside the block."""
    made = folder is None
    root = Path(tempfile.mkdtemp(prefix="automl-tl-conformance-")) if folder is None else Path(folder)
    wanted = {CACHE_DIR_ENV: str(root), CACHE_DTYPE_ENV: dtype, CACHE_GB_ENV: SUITE_CACHE_GB, THREADS_ENV: SUITE_THREADS}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield root
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if made:
            shutil.rmtree(root, ignore_errors=True)
