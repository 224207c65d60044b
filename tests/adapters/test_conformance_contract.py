"""The conformance suite reads a trial's weights through the session contract
(``automl_tl.capabilities.InspectableSession``), never through a framework's attribute names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl_tl.testing import AdapterConformance, ConformanceFailure

ROOT = Path(__file__).resolve().parents[2]


class Minimal(AdapterConformance):
    """What a third framework's suite implements: no block_weights or head_weights of its own."""

    # These three are the suite's abstract members; the tests below only instantiate the suite and read
    # weights through it, so none of them is ever called.
    def make_adapter(self):
        raise AssertionError("not called: the suite is only instantiated here")

    def make_spec(self):
        raise AssertionError("not called: the suite is only instantiated here")

    def reference_features(self, spec, data, depths):
        raise AssertionError("not called: the suite is only instantiated here")

    def seed_framework(self, seed):
        pass

    @property
    def backbone(self) -> str:
        return "third"


class Inspectable:
    def block_weights(self, index: int) -> list[np.ndarray]:
        return [np.full(2, float(index))]

    def head_weights(self) -> list[np.ndarray]:
        return [np.ones(3)]


def test_a_suite_needs_no_framework_attribute_names_to_read_weights():
    suite = Minimal()  # abstract (TypeError) while the suite asked each framework for its own readers
    assert [w.tolist() for w in suite.block_weights(Inspectable(), 2)] == [[2.0, 2.0]]  # type: ignore[arg-type]
    assert [w.tolist() for w in suite.head_weights(Inspectable())] == [[1.0, 1.0, 1.0]]  # type: ignore[arg-type]


def test_a_session_without_the_contract_fails_the_suite_with_a_clear_message():
    with pytest.raises(ConformanceFailure, match=r"^third: .*InspectableSession"):
        Minimal().block_weights(object(), 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["automl_tl/testing", "plugins/automl_tl_torch/testing.py", "plugins/automl_tl_keras/testing.py"])
def test_the_suites_do_not_reach_into_session_internals(path):
    files = [ROOT / path] if path.endswith(".py") else sorted((ROOT / path).rglob("*.py"))
    text = "\n".join(f.read_text() for f in files)
    assert "session.model" not in text and "session.base" not in text and "session.head" not in text
