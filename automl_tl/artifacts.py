"""Per-trial artifacts (weights, labels, preprocessing) so export never retrains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .types import ImageTable

TRIAL_FILE = "trial.json"
PARITY_FILE = "parity.npz"
PARITY_COUNT = 32


def trial_dir(base: Path, number: int) -> Path:
    return base / f"trial-{number:04d}"


def partial_dir(base: Path, number: int) -> Path:
    """Where a running trial writes; renamed into place only when the trial completes."""
    return base / f".trial-{number:04d}.partial"


def finalize(base: Path, number: int, meta: dict[str, Any]) -> Path:
    partial = partial_dir(base, number)
    (partial / TRIAL_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    final = trial_dir(base, number)
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return final


def discard_partial(base: Path, number: int) -> None:
    shutil.rmtree(partial_dir(base, number), ignore_errors=True)


def read_trial(base: Path, number: int) -> tuple[Path, dict[str, Any]]:
    directory = trial_dir(base, number)
    meta_file = directory / TRIAL_FILE
    if not meta_file.is_file():
        raise UserError(
            f"Trial {number} has no saved artifact in {directory}. Only completed trials keep their weights; "
            f"pick another with --trial, or check --artifacts if the study's artifacts live elsewhere."
        )
    return directory, json.loads(meta_file.read_text())


def save_parity_images(base: Path, table: ImageTable) -> None:
    """A few validation images kept with the study, so export can check parity without the data."""
    target = base / PARITY_FILE
    if target.exists():
        return
    base.mkdir(parents=True, exist_ok=True)
    indices = table.splits["val"][:PARITY_COUNT]
    partial = base / (PARITY_FILE + ".partial.npz")
    np.savez_compressed(partial, images=table.images[indices], labels=table.labels[indices])
    partial.replace(target)


def load_parity_images(base: Path) -> np.ndarray | None:
    path = base / PARITY_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return data["images"]
