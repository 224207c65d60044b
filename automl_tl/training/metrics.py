"""Classification metrics computed from probabilities, identical for every framework."""

from __future__ import annotations

import numpy as np


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose most probable class is the label (0 for no rows)."""
    if len(labels) == 0:
        return 0.0
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def balanced_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean of per-class recall over the classes present in ``labels``."""
    if len(labels) == 0:
        return 0.0
    predicted = np.argmax(probabilities, axis=1)
    recalls = [float(np.mean(predicted[labels == c] == c)) for c in np.unique(labels)]
    return float(np.mean(recalls))


def confusion_matrix(*, labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class): rows are ``labels``, columns ``predicted``. Keyword-only,
    so the two label arrays can never be passed the wrong way round."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix
