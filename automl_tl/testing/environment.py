"""The conformance suite's own surroundings: an activation cache folder of its own, in the dtype it asks
for, so the suite never reads entries another run (or another dtype) wrote and never writes into the
user's; and one compute thread, because the suite's tensors are tiny."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automl_tl.runtime.env_vars import CACHE_DIR, CACHE_DTYPE, CACHE_GB, THREADS

__all__ = ["suite_environment"]

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
    wanted = {CACHE_DIR: str(root), CACHE_DTYPE: dtype, CACHE_GB: SUITE_CACHE_GB, THREADS: SUITE_THREADS}
    saved = {variable: variable.raw() for variable in wanted}
    for variable, value in wanted.items():
        variable.put(value)
    try:
        yield root
    finally:
        for variable, earlier in saved.items():
            variable.put(earlier)
        if made:
            shutil.rmtree(root, ignore_errors=True)
