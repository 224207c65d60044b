"""What a search run is asked to do (``SearchSettings``) and what it did (``SearchResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import optuna

from automl_tl.storage.urls import DEFAULT_HEARTBEAT_S
from automl_tl.study_record import StudySettings
from automl_tl.tuning.pruning import DEFAULT_PRUNER
from automl_tl.types import ResizeRule


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
    warm_start: str | None = None  # --warm-start: a study whose best recipes are queued first (search/warm_start.py)

    def stored(self) -> StudySettings:
        """What the study keeps of these settings, for the workers that join it (``SETTINGS_ATTR``)."""
        return StudySettings(list(self.backbones), self.epochs, self.image_size, self.seed, self.pruner,
                             self.truncation, self.heartbeat_s, self.max_pixels, self.resize, self.image_size_reason,
                             self.cv_folds, self.max_latency_ms)

    @classmethod
    def from_stored(cls, stored: StudySettings, *, study_name: str, storage_url: str, artifacts: Path,
                    data_location: str, timeout: float | None = None, show_bars: bool = True,
                    artifacts_remote: str | None = None) -> SearchSettings:
        """A worker's settings: everything from the study's ``stored`` settings, except where its data and
        artifacts live. It counts no budget of its own (``trials=0``: the study's is read) and enqueues no
        smart start."""
        return cls(study_name=study_name, storage_url=storage_url, artifacts=artifacts,
                   artifacts_remote=artifacts_remote, trials=0, epochs=stored.epochs, image_size=stored.image_size,
                   backbones=list(stored.backbones), data_location=data_location, seed=stored.seed, timeout=timeout,
                   pruner=stored.pruner, truncation=stored.truncation, smart_start=False,
                   heartbeat_s=stored.heartbeat_s, max_pixels=stored.max_pixels, resize=stored.resize,
                   image_size_reason=stored.image_size_reason, show_bars=show_bars,
                   max_latency_ms=stored.max_latency_ms, cv_folds=stored.cv_folds)


@dataclass
class SearchResult:
    study: optuna.Study
    ran: int = 0
    stopped_by: str = "budget"  # "budget", "timeout", "failures", "nothing fits" (the next trial, in the time left)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
