"""The PyTorch adapter passes the shared adapter conformance suite."""

from __future__ import annotations

import numpy as np

from automl_tl.testing import AdapterConformance
from automl_tl_torch.adapter import TorchAdapter

from .torch_inline import tiny_spec


class TestTorchConformance(AdapterConformance):
    def make_adapter(self):
        return TorchAdapter()

    def make_spec(self):
        return tiny_spec()

    def block_weights(self, session, index):
        return [v.detach().cpu().numpy().copy() for v in session.model.backbone.blocks[index].state_dict().values()]


def test_conformance_helpers_make_a_learnable_table():
    from automl_tl.testing import synthetic_table

    table = synthetic_table(classes=3)
    assert table.num_classes == 3 and set(np.unique(table.labels)) == {0, 1, 2}
