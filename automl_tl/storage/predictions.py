"""A completed trial's class probabilities on the validation and test splits, kept beside its weights.

They are small (images x classes) and let the core combine trials after the search without running any
model again: ensemble selection reads the validation rows, and the ensemble's test accuracy is read from
the test rows. ``val_flip`` and ``test_flip`` are the same weights' probabilities on the left-right mirrored
images (trials saved before they were kept lack them): ``export --flip auto`` decides on them whether averaging
the model over an image and its mirror pays. The file is plain arrays (``allow_pickle=False``): a study
folder may come from someone else.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from automl_tl.errors import UserError

PREDICTIONS_FILE = "predictions.npz"
SPLITS_KEPT = ("val", "test", "val_flip", "test_flip")


@dataclass(frozen=True)
class SplitPredictions:
    """Probabilities (N, classes) of the images ``index`` (rows of the study's image table) with their labels."""

    probabilities: np.ndarray
    index: np.ndarray
    labels: np.ndarray

    def accuracy(self) -> float:
        if not len(self.labels):
            return 0.0
        return float(np.mean(self.probabilities.argmax(axis=1) == self.labels))


def save_predictions(directory: Path, predictions: dict[str, SplitPredictions]) -> None:
    """Write ``predictions`` (by split name) into a trial's (partial) artifact folder."""
    arrays: dict[str, np.ndarray] = {}
    for split, kept in predictions.items():
        arrays[f"{split}_probabilities"] = np.asarray(kept.probabilities, dtype=np.float32)
        arrays[f"{split}_index"] = np.asarray(kept.index, dtype=np.int64)
        arrays[f"{split}_labels"] = np.asarray(kept.labels, dtype=np.int64)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / PREDICTIONS_FILE, **arrays)  # type: ignore[arg-type]


def load_predictions(directory: Path) -> dict[str, SplitPredictions] | None:
    """The trial's kept predictions; None for a trial saved before they were kept. A damaged or
    inconsistent file is a ``UserError`` naming it."""
    path = directory / PREDICTIONS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            result = {}
            for split in SPLITS_KEPT:
                if f"{split}_probabilities" not in saved.files:
                    continue
                kept = SplitPredictions(saved[f"{split}_probabilities"].astype(np.float32),
                                        saved[f"{split}_index"].astype(np.int64), saved[f"{split}_labels"].astype(np.int64))
                if kept.probabilities.ndim != 2 or len(kept.probabilities) != len(kept.index) or len(kept.index) != len(kept.labels):
                    raise ValueError(f"the {split} arrays do not line up")
                result[split] = kept
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # np.load's zip reader
        raise UserError(f"{path} is damaged ({exc}); the trial cannot take part in an ensemble. Run the search "
                        f"again, or export single trials.") from None
    return result
