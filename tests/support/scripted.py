"""Probabilities with a scripted accuracy, for test sessions that stand in for training."""

from __future__ import annotations

import numpy as np


def one_hot_with_accuracy(labels: np.ndarray, accuracy: float, num_classes: int) -> np.ndarray:
    """One-hot probabilities right on the first ``accuracy`` share of ``labels`` and wrong (the next class) on the rest."""
    right = int(round(accuracy * len(labels)))
    predicted = labels.copy()
    predicted[right:] = (labels[right:] + 1) % num_classes
    return np.eye(num_classes, dtype=np.float32)[predicted]
