"""The Keras adapter passes the same conformance suite as the PyTorch one."""

from __future__ import annotations

import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

from automl_tl.testing import AdapterConformance  # noqa: E402
from automl_tl_keras.adapter import KerasAdapter  # noqa: E402

from tests.plugins.keras_inline import tiny_keras_spec  # noqa: E402


class TestKerasConformance(AdapterConformance):
    export_tolerance = 1e-4
    determinism_tolerance = 1e-4

    def make_adapter(self):
        return KerasAdapter()

    def make_spec(self):
        return tiny_keras_spec()

    def block_weights(self, session, index):
        start = 0 if index == 0 else session.base.layers.index(session.base.get_layer(session.spec.blocks[index - 1])) + 1
        end_name = session.spec.blocks[index]
        end = len(session.base.layers) - 1 if end_name == "<output>" else session.base.layers.index(session.base.get_layer(end_name))
        return [w.copy() for layer in session.base.layers[start : end + 1] for w in layer.get_weights()]
