"""How long a trial's exported model takes to classify images on this machine's CPU, and the trade-off
between that and validation accuracy.

A trial's latency depends on its architecture (framework, backbone, cut point, head width, image size,
number of classes), never on its weights, so it is measured once per architecture by the framework
adapter's optional ``inference_latency(spec, config, num_classes)`` and kept in a small JSON file in the
cache folder, keyed by the architecture and by this machine (CPU model, usable CPUs, runtime versions):
another machine measures again. The file is written atomically; a damaged one is ignored and rewritten.
``search --max-latency-ms`` makes the batch-1 figure a constraint: a trial over it is not trained (see
``record_latency`` and docs/decisions.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_tl.capabilities import MeasuresLatency
from automl_tl.errors import TrialFailure
from automl_tl.runtime.cache_paths import latency_dir
from automl_tl.runtime.threads import usable_cpus
from automl_tl.study_record import LATENCY_ATTR, LATENCY_B32_ATTR, LATENCY_ERROR_ATTR, TOO_SLOW_ATTR
from automl_tl.training.engine import effective_config
from automl_tl.tuning.measurement_file import MeasurementFile
from automl_tl.types import BackboneSpec, FrameworkAdapter, TrialConfig

FORMAT_VERSION = 1  # bump when what is measured changes: older figures are then measured again
CONSTRAINT_KEY = "latency_ms"  # Optuna constraint: latency minus limit, feasible when <= 0
# The runtimes exported models run in, each with the distributions that install it: a new version measures again.
RUNTIMES = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
            "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"), "keras": ("keras",)}


@dataclass(frozen=True)
class Architecture:
    """What a trial's inference time depends on: everything that shapes its exported model, not its weights."""

    framework: str
    backbone: str
    blocks: int  # the backbone's declared blocks
    depth: int  # the blocks kept (the cut point)
    cut_at: str  # the name of the last block kept
    head_units: int  # 0: a linear head
    image_size: int
    num_classes: int


def architecture_of(spec: BackboneSpec, config: TrialConfig, num_classes: int) -> Architecture:
    """The architecture ``config`` trains on ``spec`` (as ``run_trial`` runs it: a from-scratch backbone is never cut)."""
    config = effective_config(spec, config)
    depth = config.depth(len(spec.blocks))
    return Architecture(spec.framework, spec.name, len(spec.blocks), depth, spec.blocks[depth - 1],
                        int(config.head_units), int(config.image_size), int(num_classes))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return " ".join(line.partition(":")[2].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(distributions: Sequence[str]) -> str | None:
    """The version of the first of ``distributions`` that is installed, or None."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine_signature() -> dict[str, Any]:
    """What makes a latency measured here hold here only: the CPU model, the CPUs this process may use,
    and the versions of the runtimes that run exported models."""
    return {"cpu": _cpu_model(), "threads": usable_cpus(), **{name: _version(names) for name, names in RUNTIMES.items()}}


def cache_key(architecture: Architecture, machine: Mapping[str, Any]) -> str:
    """The cache entry's name: a digest of the architecture, the machine and the format version."""
    text = json.dumps({"format": FORMAT_VERSION, "architecture": asdict(architecture), "machine": dict(machine)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def latency_cache_file() -> Path:
    """``latency/latency.json`` in the cache folder (``$AUTOML_TL_CACHE_DIR``); ``automl-tl cache --clear`` empties it."""
    return latency_dir() / "latency.json"


def _valid(result: Any) -> dict[str, float] | None:
    """A measurement with a finite, positive ``batch_1_ms`` (and finite, positive other figures), else None."""
    if not isinstance(result, Mapping) or "batch_1_ms" not in result:
        return None
    figures = {}
    for name, value in result.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not (math.isfinite(value) and value > 0):
            return None
        figures[name] = float(value)
    return figures


class LatencyCache(MeasurementFile):
    """Measured latencies in one JSON file (see ``MeasurementFile``: reading never fails, writing is atomic)."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path or latency_cache_file(), FORMAT_VERSION)

    def get(self, architecture: Architecture, machine: Mapping[str, Any]) -> dict[str, float] | None:
        """The figures measured for ``architecture`` on ``machine``, or None."""
        entry = self.entry(cache_key(architecture, machine))
        return _valid(entry.get("latency")) if entry is not None else None

    def put(self, architecture: Architecture, machine: Mapping[str, Any], latency: Mapping[str, float]) -> bool:
        """Keep ``latency`` for ``architecture`` on ``machine``; False when the file could not be written."""
        return self.put_entry(cache_key(architecture, machine), {
            "architecture": asdict(architecture), "machine": dict(machine), "latency": dict(latency)})


def architecture_latency(adapter: FrameworkAdapter, spec: BackboneSpec, config: TrialConfig, num_classes: int,
                         cache: LatencyCache | None = None) -> dict[str, float] | None:
    """The latency figures of ``config``'s architecture (``batch_1_ms``, ``batch_32_ms``), from the cache or
    measured by the adapter and then cached; None when the adapter cannot measure (no ``inference_latency``).
    An adapter that returns something other than positive milliseconds raises ``TrialFailure``."""
    if not isinstance(adapter, MeasuresLatency):
        return None
    cache = cache or LatencyCache()
    architecture, machine = architecture_of(spec, config, num_classes), machine_signature()
    cached = cache.get(architecture, machine)
    if cached is not None:
        return cached
    measured = _valid(adapter.inference_latency(spec, effective_config(spec, config), num_classes))
    if measured is None:
        raise TrialFailure(f"the {spec.framework} adapter's inference_latency gave no positive batch_1_ms figure "
                           f"in milliseconds for backbone {spec.name!r}")
    cache.put(architecture, machine, measured)
    return measured


def record_latency(trial: optuna.Trial, adapter: FrameworkAdapter, spec: BackboneSpec, config: TrialConfig,
                   num_classes: int, limit_ms: float | None) -> float | None:
    """Measure (or look up) the trial's latency before it trains and record it on the trial: ``latency_ms``
    (batch 1), ``latency_ms_b32`` and, with a limit, the Optuna constraint ``latency - limit`` (feasible
    when <= 0) that TPE learns from. Returns the batch-1 figure, or None when the adapter cannot measure.
    Without a limit a failed measurement is recorded and the trial trains anyway; with one it fails the
    trial (``TrialFailure``): it cannot be shown to meet the limit."""
    try:
        figures = architecture_latency(adapter, spec, config, num_classes)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, TrialFailure) else f"{type(exc).__name__}: {exc}"
        if limit_ms is not None:
            raise TrialFailure(f"its inference latency could not be measured for --max-latency-ms: {reason}") from exc
        trial.set_user_attr(LATENCY_ERROR_ATTR, reason[:500])
        return None
    if figures is None:
        return None
    trial.set_user_attr(LATENCY_ATTR, round(figures["batch_1_ms"], 3))
    if "batch_32_ms" in figures:
        trial.set_user_attr(LATENCY_B32_ATTR, round(figures["batch_32_ms"], 3))
    if limit_ms is not None:
        trial.set_constraint(CONSTRAINT_KEY, figures["batch_1_ms"] - limit_ms)
    return figures["batch_1_ms"]


def format_ms(value: float) -> str:
    """Milliseconds with the digits that matter: 0.61, 3.2, 117."""
    return f"{value:.2f}" if value < 1 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def too_slow_reason(latency_ms: float, limit_ms: float) -> str:
    """The sentence a too-slow trial records."""
    return (f"too slow: {format_ms(latency_ms)} ms > limit {limit_ms:g} ms (batch 1, the exported model on this "
            f"machine's CPU), so it was not trained")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """The indices of the (latency, accuracy) points that no other point beats: none is at least as fast and
    at least as accurate and better in one of the two. Sorted from fastest to slowest; equal points are all
    kept; points with a NaN are never on the front."""
    usable = [i for i, (latency, accuracy) in enumerate(points) if not (math.isnan(latency) or math.isnan(accuracy))]
    order = sorted(usable, key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        latency, accuracy = points[i]
        if accuracy > best:
            front.append(i)
            best = accuracy
        elif front and points[front[-1]] == (latency, accuracy):
            front.append(i)  # the same point again
    return front


def _latency_of(trial: FrozenTrial) -> float | None:
    value = trial.user_attrs.get(LATENCY_ATTR)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def timed_trials(trials: Sequence[FrozenTrial]) -> list[tuple[FrozenTrial, float]]:
    """The completed trials with a value and a measured batch-1 latency, with that latency."""
    return [(t, latency) for t in trials if t.state == TrialState.COMPLETE and t.value is not None
            and (latency := _latency_of(t)) is not None]


def fastest_accurate(trials: Sequence[FrozenTrial], limit_ms: float) -> tuple[FrozenTrial | None, str]:
    """The most accurate completed trial whose batch-1 latency is within ``limit_ms`` (ties: the faster, then
    the earlier), with a sentence saying which and why; (None, why not) when no completed trial is within it.
    Trials without a measured latency are left out, and the sentence says how many."""
    timed = timed_trials(trials)
    untimed = sum(t.state == TrialState.COMPLETE and t.value is not None for t in trials) - len(timed)
    note = (f" ({untimed} completed trial{'s have' if untimed != 1 else ' has'} no measured latency and "
            f"{'are' if untimed != 1 else 'is'} left out)") if untimed else ""
    if not timed:
        return None, f"no completed trial has a measured latency{note}"
    within = [(t, latency) for t, latency in timed if latency <= limit_ms]
    if not within:
        fastest, latency = min(timed, key=lambda item: (item[1], item[0].number))
        return None, (f"no completed trial runs within {limit_ms:g} ms: the fastest, trial {fastest.number} "
                      f"(score {fastest.value:.4f}), takes {format_ms(latency)} ms{note}")
    chosen, latency = min(within, key=lambda item: (-(item[0].value or 0.0), item[1], item[0].number))
    text = f"trial {chosen.number}: score {chosen.value:.4f} at {format_ms(latency)} ms (batch 1, within {limit_ms:g} ms)"
    better = [(t, lat) for t, lat in timed if (t.value or 0.0) > (chosen.value or 0.0)]
    if better:
        best, best_latency = min(better, key=lambda item: (-(item[0].value or 0.0), item[1], item[0].number))
        text += f"; trial {best.number} ({best.value:.4f}) takes {format_ms(best_latency)} ms > {limit_ms:g} ms"
    else:
        text += ", the most accurate trial"
    return chosen, text + note


def limit_note(trials: Sequence[FrozenTrial], limit_ms: float | None) -> str | None:
    """What a latency limit did to a study, for the end of ``search``: the trials it kept from training
    (and the fastest of them), and the trials it could not judge; None when there is nothing to say."""
    if limit_ms is None:
        return None
    slow = [(t, latency) for t in trials if TOO_SLOW_ATTR in t.user_attrs and (latency := _latency_of(t)) is not None]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    unjudged = [t for t in finished if _latency_of(t) is None]
    parts = []
    if slow:
        fastest = min(latency for _, latency in slow)
        parts.append(f"{len(slow)} of {len(finished)} finished trials were over --max-latency-ms {limit_ms:g} and not "
                     f"trained (the fastest of them takes {format_ms(fastest)} ms at batch 1)")
    if unjudged:
        parts.append(f"{len(unjudged)} finished trial(s) have no measured latency (their framework cannot measure it, "
                     f"or they ran before automl-tl measured latency), so the limit did not apply to them")
    return "; ".join(parts) + "." if parts else None
