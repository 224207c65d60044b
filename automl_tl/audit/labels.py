"""Likely label errors, by confident learning over out-of-fold probabilities (Northcutt et al., JAIR 2021).

Under cross-validation every train and val image is predicted by a model that never trained on it.
Confident learning reads those probabilities this way:

1. each class ``j`` gets a threshold ``t_j``: the mean probability of ``j`` over the images labelled ``j``
   (the model's typical self-confidence for that class, so a class the model finds hard is not flagged
   wholesale);
2. an image's confident class is, among the classes whose probability reaches their threshold, the one
   with the highest probability (none reach it: the image is not counted);
3. the images whose confident class is not their label are the off-diagonal of the confident joint: the
   likely label errors. They are ranked by self-confidence (the probability of the given label), lowest
   first, and ties by the margin of the suggested class over the given one.

One addition to the paper's rule: an image that no class claims confidently (step 2 gives none) still counts
when its out-of-fold prediction is another class and its own label's probability is under half its class's
threshold; the suggestion is then the predicted class. A relabelled image of a class the model is usually
very sure of (threshold 0.9) can come out at 0.6 for its true class, just under that threshold, while its
given label gets 0.03: the paper's rule leaves it out, and it is the clearest error of all.

docs/decisions.md ("issue 26: the data audit") says why this rule rather than a plain margin rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl_tl.audit.report import LabelIssue


def class_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``t_j``: the mean probability of class j over the images labelled j (1.0, never reached, for a class
    with no image)."""
    classes = probabilities.shape[1]
    thresholds = np.ones(classes, dtype=np.float64)
    for j in range(classes):
        rows = labels == j
        if rows.any():
            thresholds[j] = float(probabilities[rows, j].mean())
    return thresholds


def confident_classes(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each image's confident class (step 2 above, with the addition for an image no class claims), or -1."""
    thresholds = class_thresholds(probabilities, labels)
    above = probabilities >= thresholds[None, :]
    masked = np.where(above, probabilities, -1.0)
    chosen = np.where(above.any(axis=1), masked.argmax(axis=1), -1)
    predicted = probabilities.argmax(axis=1)
    given = probabilities[np.arange(len(labels)), labels]
    unclaimed_error = (chosen < 0) & (predicted != labels) & (given < 0.5 * thresholds[labels])
    return np.where(unclaimed_error, predicted, chosen)


def label_issues(probabilities: np.ndarray, labels: np.ndarray, files: Sequence[str],
                 class_names: Sequence[str]) -> list[LabelIssue]:
    """The likely label errors among ``files`` (rows of ``probabilities``, labelled ``labels``), most likely
    first."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.ndim != 2 or len(probabilities) != len(labels) or len(labels) != len(files):
        raise ValueError("probabilities, labels and files must describe the same images")
    confident = confident_classes(probabilities, labels)
    rows = np.nonzero((confident >= 0) & (confident != labels))[0]
    given = probabilities[rows, labels[rows]]
    suggested = probabilities[rows, confident[rows]]
    order = np.lexsort((-(suggested - given), given))  # lowest self-confidence first, then the widest margin
    return [LabelIssue(str(files[rows[k]]), str(class_names[labels[rows[k]]]), str(class_names[confident[rows[k]]]),
                       round(float(given[k]), 4), round(float(suggested[k]), 4)) for k in order]
