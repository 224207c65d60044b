"""The adapter conformance suite, ready for a PyTorch backbone: a plugin's test only names its spec."""

from __future__ import annotations

from typing import Any

from automl_tl.testing import AdapterConformance

from .adapter import TorchAdapter


class TorchBackboneConformance(AdapterConformance):
    """Subclass as ``TestMyBackbone`` and implement ``make_spec()`` to run every conformance check."""

    def make_adapter(self) -> TorchAdapter:
        return TorchAdapter()

    def block_weights(self, session: Any, index: int) -> list[Any]:
        return [v.detach().cpu().numpy().copy() for v in session.model.backbone.blocks[index].state_dict().values()]
