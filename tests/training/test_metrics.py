import numpy as np
import pytest

from automl_tl.training.metrics import accuracy, balanced_accuracy, confusion_matrix
from automl_tl.types import ImageTable


def test_accuracy_and_balanced_accuracy_differ_on_imbalanced_predictions():
    labels = np.array([0, 0, 0, 0, 1])
    probabilities = np.eye(2)[[0, 0, 0, 0, 0]]
    assert accuracy(probabilities, labels) == pytest.approx(0.8)
    assert balanced_accuracy(probabilities, labels) == pytest.approx(0.5)
    assert accuracy(np.zeros((0, 2)), np.zeros(0, dtype=int)) == 0.0


def test_confusion_matrix_counts_true_by_predicted():
    matrix = confusion_matrix(labels=np.array([0, 0, 1]), predicted=np.array([0, 1, 1]), num_classes=2)
    assert matrix.tolist() == [[1, 1], [0, 1]]  # rows: true class; one image of class 0 was called 1
    with pytest.raises(TypeError):
        confusion_matrix(np.array([0]), np.array([0]), 1)  # type: ignore[misc]  # keyword-only: no order to mix up


def test_class_weights_are_inverse_frequency_and_one_when_balanced():
    def table(labels):
        labels = np.array(labels)
        return ImageTable(images=np.zeros((len(labels), 2, 2, 3), np.uint8), labels=labels, class_names=("a", "b"),
                          relpaths=tuple(map(str, range(len(labels)))), splits={"train": np.arange(len(labels))})

    np.testing.assert_allclose(table([0, 1, 0, 1]).class_weights(), [1.0, 1.0])
    weights = table([0, 0, 0, 1]).class_weights()
    assert weights[1] == pytest.approx(3 * weights[0])
