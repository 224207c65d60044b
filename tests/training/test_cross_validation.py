"""A trial scored by K-fold cross-validation: OOF value, one epoch count for all folds, refit, pruning on fold 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_tl.training.cross_validation import run_trial_scored
from automl_tl.training.engine import PruneTrial
from automl_tl.training.folds import scored_rows
from automl_tl.training.metrics import accuracy
from automl_tl.types import BackboneSpec, ImageTable, Phase, TrialConfig, WeightsInfo
from tests.support.scripted import one_hot_with_accuracy

# The share of validation images each epoch gets right: the best epoch count is 2 (index 1), not the last.
ACCURACY_AFTER = (0.5, 0.9, 0.7, 0.6)


class CountingSession:
    """Right on the first ``ACCURACY_AFTER[epochs - 1]`` share of any split's rows; saves how many epochs it trained."""

    def __init__(self, data: ImageTable, log: list[ImageTable]) -> None:
        self.data, self.epochs = data, 0
        log.append(data)

    def set_phase(self, phase: Phase) -> None:
        pass

    def train_epoch(self) -> float:
        self.epochs += 1
        return 1.0

    def predict_split(self, split: str) -> np.ndarray:
        labels = self.data.labels[self.data.splits[split]]
        return one_hot_with_accuracy(labels, ACCURACY_AFTER[self.epochs - 1], self.data.num_classes)

    def snapshot(self) -> Any:
        return self.epochs

    def restore(self, snapshot: Any) -> None:
        self.epochs = snapshot

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "trained.json").write_text(json.dumps({"epochs": self.epochs}))

    def close(self) -> None:
        pass


class CountingAdapter:
    name = "counting"

    def __init__(self) -> None:
        self.tables: list[ImageTable] = []

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> CountingSession:
        return CountingSession(data, self.tables)


SPEC = BackboneSpec(name="net", framework="counting", factory=lambda pretrained: None, blocks=("a", "b"),
                    feature_dim=4, weights=WeightsInfo("test", lambda: True))
CONFIG = TrialConfig(backbone="net", freeze_fraction=1.0, head_units=0, head_dropout=0.0, lr=1e-3,
                     finetune_lr_ratio=1.0, switch_epoch=4, epochs=4, image_size=8)


@pytest.fixture
def data() -> ImageTable:
    labels = np.repeat(np.arange(3), 20).astype(np.int64)
    rows = np.arange(len(labels))
    return ImageTable(images=np.zeros((len(labels), 2, 2, 3), np.uint8), labels=labels, class_names=("a", "b", "c"),
                      relpaths=tuple(f"{label}/{i}.png" for i, label in enumerate(labels)),
                      splits={"train": rows[rows % 4 > 1], "val": rows[rows % 4 == 1], "test": rows[rows % 4 == 0]})


def test_the_value_is_the_out_of_fold_accuracy_of_one_epoch_count_and_the_refit_trains_that_many(data, tmp_path):
    adapter = CountingAdapter()
    pruner_saw: list[int] = []
    starts: list[TrialConfig] = []

    def should_prune(result: Any) -> bool:
        pruner_saw.append(result.epoch)
        return False

    outcome = run_trial_scored(adapter, SPEC, CONFIG, data, 4, should_prune=should_prune, save_to=tmp_path / "kept",
                               on_start=starts.append)
    rows = scored_rows(data)
    assert np.array_equal(outcome.val_index, rows), "OOF predictions cover every train and val row"
    assert outcome.val_accuracy == pytest.approx(accuracy(outcome.val_probabilities, data.labels[rows]))
    assert outcome.best_epoch == 1 and outcome.val_accuracy == pytest.approx(0.9, abs=0.05)
    assert json.loads((tmp_path / "kept" / "trained.json").read_text()) == {"epochs": 2}, "refit for the best count"
    assert pruner_saw == [0, 1, 2, 3], "only fold 0 reports to the pruner"
    assert len(starts) == 1
    assert len(adapter.tables) == 5, "four folds and the refit"
    test = set(data.splits["test"])
    for fold in adapter.tables:
        assert not test & (set(fold.splits["train"]) | set(fold.splits["val"])), "the test split is never scored on"
        assert fold.images is data.images, "the same images in every fold: cached activations are shared"
    assert set(adapter.tables[-1].splits["train"]) == set(rows) and len(adapter.tables[-1].splits["val"]) == 0
    assert outcome.scoring["cv_folds"] == 4 and len(outcome.scoring["cv_fold_accuracies"]) == 4
    assert outcome.test_probabilities is not None and len(outcome.test_probabilities) == len(data.splits["test"])


def test_without_refit_the_fold_0_model_is_kept(data, tmp_path):
    adapter = CountingAdapter()
    outcome = run_trial_scored(adapter, SPEC, CONFIG, data, 3, save_to=tmp_path / "kept", refit=False)
    assert len(adapter.tables) == 3
    assert json.loads((tmp_path / "kept" / "trained.json").read_text()) == {"epochs": 2}, "fold 0 at its best epoch"
    assert outcome.scoring["cv_refit"] is False


def test_a_trial_pruned_in_fold_0_runs_no_other_fold(data):
    adapter = CountingAdapter()
    with pytest.raises(PruneTrial):
        run_trial_scored(adapter, SPEC, CONFIG, data, 5, should_prune=lambda result: result.epoch == 0)
    assert len(adapter.tables) == 1
