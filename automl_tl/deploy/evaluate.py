"""Accuracy of an exported model on one split of a data set, using the same stable split as the search."""

from __future__ import annotations

from typing import Any

import numpy as np

from automl_tl.deploy.model_folder import flip_averaged
from automl_tl.deploy.predict import LoadedExport, predict_rows
from automl_tl.errors import UserError
from automl_tl.training.metrics import accuracy, balanced_accuracy
from automl_tl.types import ImageTable


def evaluate_export(loaded: LoadedExport, table: ImageTable, split: str) -> dict[str, Any]:
    """Accuracy and balanced accuracy of the exported model on ``split`` of ``table``, and which study and
    trial the model came from: the test split estimates one chosen model, it is not for choosing among trials
    (compare candidates with ``split="val"``). ``split="all"`` scores every image of ``table``: a held-out
    folder that no search has seen, whose own split is not needed."""
    if list(table.class_names) != list(loaded.class_names):
        raise UserError(
            f"The data's classes {list(table.class_names)} differ from the model's {loaded.class_names}; "
            f"evaluate on the data set the model was trained on."
        )
    indices = np.arange(len(table.labels), dtype=np.int64) if split == "all" else table.splits[split]
    probabilities = predict_rows(loaded.model.predict, table.images, indices, len(loaded.class_names))
    labels = table.labels[indices]
    return {"split": split, "images": int(len(indices)), "accuracy": accuracy(probabilities, labels),
            "balanced_accuracy": balanced_accuracy(probabilities, labels),
            "study": loaded.metadata.get("study"), "trial": loaded.metadata.get("trial"),
            "flip_averaged": flip_averaged(loaded.metadata)}
