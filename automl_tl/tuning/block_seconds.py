"""Per-block forward seconds per image, for each (framework, backbone, image size, machine): measured once by the
framework adapter's optional ``block_seconds(spec, image_size)`` and kept beside the latency cache, in
``latency/block_seconds.json`` of the cache folder, so that every later search on this machine predicts trial
costs without measuring again. ``automl-tl cache --clear`` deletes the file (see ``MeasurementFile``)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from automl_tl.capabilities import NamesDevice, TimesBlocks
from automl_tl.runtime.cache_paths import latency_dir
from automl_tl.runtime.env_vars import THREADS
from automl_tl.tuning.latency import machine_signature
from automl_tl.tuning.measurement_file import MeasurementFile
from automl_tl.types import BackboneSpec, FrameworkAdapter

FORMAT_VERSION = 1  # bump when what is measured changes: older figures are then measured again
FILE_KIND = "automl-tl block seconds"
FRAMEWORK_DISTRIBUTIONS = ("torch", "torchvision", "tensorflow", "keras")  # a new version may run blocks faster


@dataclass(frozen=True)
class BlockSeconds:
    """Each block's forward seconds per image (input to output), and what getting them cost this process:
    ``profiled_s`` seconds of measuring, 0 when they came from the cache."""

    seconds: tuple[float, ...]
    profiled_s: float = 0.0


def block_seconds_file() -> Path:
    """``latency/block_seconds.json`` in the cache folder (``$AUTOML_TL_CACHE_DIR``)."""
    return latency_dir() / "block_seconds.json"


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def profile_machine(adapter: FrameworkAdapter) -> dict[str, Any]:
    """What makes block timings measured here hold here only: the latency cache's machine signature (CPU
    model, usable CPUs, runtimes), the framework versions, the thread setting and the adapter's device."""
    device = str(adapter.device) if isinstance(adapter, NamesDevice) else ""
    return {**machine_signature(), **{name: _installed(name) for name in FRAMEWORK_DISTRIBUTIONS},
            "threads_setting": THREADS.raw() or "", "device": device}


def profile_key(spec: BackboneSpec, image_size: int, machine: Mapping[str, Any]) -> str:
    """The entry's name: a digest of the backbone's name and blocks, the size, the machine and the format."""
    text = json.dumps({"format": FORMAT_VERSION, "framework": spec.framework, "backbone": spec.name,
                       "blocks": list(spec.blocks), "image_size": int(image_size), "machine": dict(machine)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def valid_seconds(value: Any, blocks: int) -> tuple[float, ...] | None:
    """``value`` as one finite, positive figure per block, or None."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or len(value) != blocks:
        return None
    figures = []
    for figure in value:
        if isinstance(figure, bool) or not isinstance(figure, (int, float)) or not (math.isfinite(figure) and figure > 0):
            return None
        figures.append(float(figure))
    return tuple(figures)


class BlockSecondsCache(MeasurementFile):
    """Measured block timings in one JSON file (reading never fails, writing is atomic)."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path or block_seconds_file(), FORMAT_VERSION, FILE_KIND)

    def get(self, spec: BackboneSpec, image_size: int, machine: Mapping[str, Any]) -> tuple[float, ...] | None:
        """The figures measured for ``spec`` at ``image_size`` on ``machine``, or None."""
        entry = self.entry(profile_key(spec, image_size, machine))
        return valid_seconds(entry.get("seconds"), len(spec.blocks)) if entry is not None else None

    def put(self, spec: BackboneSpec, image_size: int, machine: Mapping[str, Any], seconds: Sequence[float],
            profiled_s: float) -> bool:
        """Keep ``seconds`` for ``spec`` at ``image_size`` on ``machine``; False when the file could not be written."""
        return self.put_entry(profile_key(spec, image_size, machine), {
            "framework": spec.framework, "backbone": spec.name, "image_size": int(image_size),
            "machine": dict(machine), "seconds": list(seconds), "profiled_s": round(profiled_s, 3)})


def block_seconds_of(adapter: FrameworkAdapter, spec: BackboneSpec, image_size: int,
                     cache: BlockSecondsCache | None = None,
                     clock: Callable[[], float] = time.perf_counter) -> BlockSeconds | None:
    """``spec``'s block timings at ``image_size`` from the cache, or measured by the adapter and then cached;
    None when the adapter cannot measure (no ``block_seconds``) or gives something other than one positive
    figure per block."""
    if not isinstance(adapter, TimesBlocks):
        return None
    cache = cache or BlockSecondsCache()
    machine = profile_machine(adapter)
    cached = cache.get(spec, image_size, machine)
    if cached is not None:
        return BlockSeconds(cached)
    start = clock()
    measured = valid_seconds(adapter.block_seconds(spec, int(image_size)), len(spec.blocks))
    spent = clock() - start
    if measured is None:
        return None
    cache.put(spec, image_size, machine, measured, spent)
    return BlockSeconds(measured, spent)


class BlockSecondsSource:
    """Block timings for the cost model, looked up once per (backbone, size) in this process: from the file, or
    measured on first use. ``profiled_s`` adds up what measuring cost (time the search spent profiling)."""

    def __init__(self, adapter_of: Callable[[str], FrameworkAdapter], cache: BlockSecondsCache | None = None) -> None:
        self.adapter_of, self.cache = adapter_of, cache or BlockSecondsCache()
        self.known: dict[tuple[str, int], tuple[float, ...] | None] = {}
        self.profiled_s = 0.0

    def __call__(self, spec: BackboneSpec, image_size: int) -> tuple[float, ...] | None:
        """The timings of ``spec`` at ``image_size``; None when its adapter cannot measure them (or failed to)."""
        key = (spec.name, int(image_size))
        if key not in self.known:
            try:
                found = block_seconds_of(self.adapter_of(spec.framework), spec, image_size, self.cache)
            except Exception:  # a prediction is advice: a backbone that cannot be timed is simply not predicted
                found = None
            self.known[key] = found.seconds if found is not None else None
            self.profiled_s += found.profiled_s if found is not None else 0.0
        return self.known[key]
