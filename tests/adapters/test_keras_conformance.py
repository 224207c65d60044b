"""The Keras adapter passes the same conformance suite as the PyTorch one, run as the docs show: on an
inline backbone and on the built-in MobileNetV2 (its ImageNet weights ported from torchvision)."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

from automl_tl.plugin import load_plugins  # noqa: E402
from automl_tl_keras.testing import KerasBackboneConformance  # noqa: E402
from tests.support.sample_plugins.keras_inline import tiny_keras_spec  # noqa: E402

# Checks of the adapter's own mechanics, the same for every backbone: the inline backbone runs them. Keras
# builds and compiles MobileNetV2 afresh for each check, so running them on it too costs about 30 s more;
# AUTOML_TL_FULL_CONFORMANCE=1 does (the whole suite passes on it).
ADAPTER_MECHANICS = ("test_determinism_under_a_fixed_seed", "test_engine_switches_phase_once_and_reports_every_epoch",
                     "test_snapshot_and_restore", "test_load_names_a_damaged_weights_file",
                     "test_predictions_are_probabilities_for_every_split")


class TestKerasConformance(KerasBackboneConformance):
    def make_spec(self):
        return tiny_keras_spec()


def _mobilenet_v2():
    spec = load_plugins().backbone("MobileNetV2")
    if not spec.weights_available():
        pytest.skip("the ported MobileNetV2 weights are not here (make setup ports them)")
    return spec


def _checked_on_the_inline_backbone(self):
    pytest.skip("adapter mechanics, checked on the inline backbone (AUTOML_TL_FULL_CONFORMANCE=1 runs it here too)")


class TestKerasMobileNetV2Conformance(KerasBackboneConformance):
    def make_spec(self):
        return _mobilenet_v2()


if not os.environ.get("AUTOML_TL_FULL_CONFORMANCE"):
    for _check in ADAPTER_MECHANICS:
        setattr(TestKerasMobileNetV2Conformance, _check, _checked_on_the_inline_backbone)
