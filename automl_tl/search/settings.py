"""What a search run is asked to do (``SearchSettings``) and what it did (``SearchResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import optuna

from automl_tl.search.pruning import DEFAULT_PRUNER
from automl_tl.storage.urls import DEFAULT_HEARTBEAT_S
from automl_tl.types import ResizeRule

SETTINGS_ATTR = "search_settings"  # what a worker needs to run the study's trials the same way


@dataclass
class SearchSettings:
    """Everything a search run needs besides the data and the plugins."""

    study_name: str
    storage_url: str
    artifacts: Path  # <artifacts>/<name>: the study's own folder is the key's sub-folder (see artifacts.py)
    trials: int | None  # the study's total of finished trials; None: no count, until the deadline (--timeout alone)
    epochs: int
    image_size: int
    backbones: list[str]
    data_location: str
    seed: int = 0
    timeout: float | None = None
    pruner: str = DEFAULT_PRUNER
    truncation: bool = True
    smart_start: bool = True
    max_consecutive_failures: int = 10
    heartbeat_s: int = DEFAULT_HEARTBEAT_S
    artifacts_remote: str | None = None  # s3://bucket/prefix/<study> (the key's sub-folder inside) when artifacts are shared through S3
    max_pixels: int = 40_000_000  # images above this are skipped, which changes the manifest: workers must agree
    resize: ResizeRule = field(default_factory=ResizeRule)  # how every image becomes a square (see data/resolution.py)
    image_size_reason: str = ""  # why this size (``--image-size auto`` says what it saw)
    show_bars: bool = True  # live progress bars; workers started by `search --workers` print lines only
    max_latency_ms: float | None = None  # --max-latency-ms: architectures slower than this at batch 1 are not trained
    cv_folds: int = 0  # --cv: score each trial by k-fold cross-validation over train and val (0: the single val split)


@dataclass
class SearchResult:
    study: optuna.Study
    ran: int = 0
    stopped_by: str = "budget"  # "budget", "timeout", "failures", "nothing fits" (the next trial, in the time left)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
