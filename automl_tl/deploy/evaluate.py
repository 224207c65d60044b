"""Accuracy of an exported model on one split of a data set, using the same stable split as the search."""

from __future__ import annotations

from typing import Any

import numpy as np

from automl_tl.errors import UserError
from automl_tl.training.metrics import accuracy, balanced_accuracy
from automl_tl.deploy.predict import BATCH, LoadedExport
from automl_tl.types import ImageTable


def evaluate_export(loaded: LoadedExport, table: ImageTable, split: str) -> dict[str, Any]:
    if list(table.class_names) != list(loaded.class_names):
        raise UserError(
            f"The data's classes {list(table.class_names)} differ from the model's {loaded.class_names}; "
            f"evaluate on the data set the model was trained on."
        )
    indices = table.splits[split]
    outputs = [loaded.model.predict(table.images[indices[i : i + BATCH]].astype(np.float32) / 255.0)
               for i in range(0, len(indices), BATCH)]
    probabilities = np.concatenate(outputs) if outputs else np.zeros((0, len(loaded.class_names)))
    labels = table.labels[indices]
    return {"split": split, "images": int(len(indices)), "accuracy": accuracy(probabilities, labels),
            "balanced_accuracy": balanced_accuracy(probabilities, labels)}
