"""How the study's best model does on the test split: confusion matrix, per-class precision and recall,
and the images it gets wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from automl_tl.deploy.export import load_trial_model
from automl_tl.deploy.predict import predict_rows
from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.report.data_section import DataReading, data_reading
from automl_tl.report.top_losses import MAX_MISTAKES, Mistake, ranked_mistakes
from automl_tl.storage.artifacts import read_trial, study_key
from automl_tl.training.metrics import confusion_matrix
from automl_tl.types import ImageTable


@dataclass
class BestModelResults:
    """The best trial's model on the test split: its confusion matrix, per-class scores and its mistakes with the
    highest loss; and, when the report read the data, what it found, used and skipped."""

    trial: int
    class_names: list[str]
    confusion: np.ndarray  # rows: true class, columns: predicted class
    precision: np.ndarray
    recall: np.ndarray
    mistakes: list[Mistake]  # highest loss first, at most MAX_MISTAKES
    wrong: int = 0  # all the test images it got wrong
    reading: DataReading | None = None

    @property
    def accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else 0.0


def precision_recall(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class; a class never predicted (or never present) gets 0 rather than a division by zero."""
    true_positive = np.diag(matrix).astype(np.float64)
    predicted, present = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, present, out=np.zeros_like(true_positive), where=present > 0)
    return precision, recall


def evaluate_best(plugins: Plugins, study: optuna.Study, trial_number: int, artifacts: Path,
                  table: ImageTable) -> BestModelResults:
    """Rebuild the trial's saved model (nothing is retrained) and predict the test split."""
    _, meta = read_trial(artifacts, trial_number, study.study_name, study_key(study))
    if list(table.class_names) != list(meta["class_names"]):
        raise UserError(f"the data's classes {list(table.class_names)} differ from the model's {meta['class_names']}; "
                        f"pass --data with the data set the study searched")
    trial = load_trial_model(plugins, study, artifacts, trial_number)
    adapter, model, preprocessing = trial.adapter, trial.model, trial.preprocessing
    class_names = list(meta["class_names"])
    indices = np.asarray(table.splits["test"])
    probabilities = predict_rows(lambda batch: adapter.predict_loaded(model, preprocessing, batch), table.images,
                                 indices, len(class_names))
    predicted = probabilities.argmax(axis=1)
    labels = table.labels[indices]
    matrix = confusion_matrix(labels=labels, predicted=predicted, num_classes=len(class_names))
    precision, recall = precision_recall(matrix)
    mistakes = [Mistake(np.array(table.images[indices[i]]), class_names[labels[i]], class_names[predicted[i]],
                        float(probabilities[i, predicted[i]]), float(probabilities[i, labels[i]]),
                        table.relpaths[indices[i]] if len(table.relpaths) > indices[i] else "")
                for i in ranked_mistakes(probabilities, labels, MAX_MISTAKES)]
    return BestModelResults(trial_number, class_names, matrix, precision, recall, mistakes,
                            int(np.count_nonzero(predicted != labels)))


def evaluate_study_best(plugins: Plugins, study: optuna.Study, artifacts_option: str | None, data: str | None,
                        warnings: list[str]) -> BestModelResults:
    """The report's evaluation: the best trial's model on the test split of the study's data (or of ``data``).

    Fetches the trial from the S3 mirror when the study's artifacts live there, and appends to ``warnings``
    when the data is no longer what the study searched on."""
    from automl_tl.deploy.export import fetch_remote_artifacts
    from automl_tl.storage.artifacts import study_artifact_places
    from automl_tl.tuning.budget import ranked_trials
    from automl_tl.tuning.study_data import study_data

    ranked = ranked_trials(study)
    if not ranked:
        raise UserError("the study has no completed trial yet")
    local, remote = study_artifact_places(study, artifacts_option)
    if remote:
        fetch_remote_artifacts(remote, local, ranked[0].number)
    loaded = study_data(plugins, study.user_attrs, study.study_name, data)
    if loaded.changed:
        warnings.append(
            f"The data in {loaded.location} is not the data study {study.study_name!r} was searched on: images were "
            f"added, removed, renamed, relabelled or edited since. The best model's test results in this report "
            f"describe that data, not the study's own test split, and its test images may include images the "
            f"model was trained on. Pass --data with the study's original data to report on it."
        )
    results = evaluate_best(plugins, study, ranked[0].number, local, loaded.table)
    if loaded.splits is not None:
        results.reading = data_reading(loaded.splits, loaded.table)
    return results
