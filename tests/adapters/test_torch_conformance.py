"""The PyTorch adapter passes the shared adapter conformance suite."""

from __future__ import annotations

import numpy as np

from automl_tl_torch.testing import TorchBackboneConformance

from tests.plugins.torch_inline import tiny_spec


class TestTorchConformance(TorchBackboneConformance):
    def make_spec(self):
        return tiny_spec()


def test_conformance_helpers_make_a_learnable_table():
    from automl_tl.testing import synthetic_table

    table = synthetic_table(classes=3)
    assert table.num_classes == 3 and set(np.unique(table.labels)) == {0, 1, 2}
