"""The adapter conformance suite, ready for a PyTorch backbone: a plugin's test only names its spec."""

from __future__ import annotations

import numpy as np

from automl_tl.testing import AdapterConformance, reference_inputs
from automl_tl.types import BackboneSpec, FrameworkAdapter, ImageTable

from .adapter import TorchAdapter

__all__ = ["TorchBackboneConformance"]


class TorchBackboneConformance(AdapterConformance):
    """Subclass as ``TestMyBackbone`` and implement ``make_spec()`` to run every conformance check."""

    def make_adapter(self) -> FrameworkAdapter:
        return TorchAdapter()

    def seed_framework(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)

    def reference_features(self, spec: BackboneSpec, data: ImageTable, depths: list[int]) -> dict[int, np.ndarray]:
        """The factory's model itself, its declared block modules run in order (``a+b`` runs a, then b),
        then a plain spatial mean; after the last block, the spec's ``post_pool`` modules too."""
        import torch

        model = spec.factory(spec.pretrained).eval()

        def modules(path: str) -> list[torch.nn.Module]:
            return [model.get_submodule(part) for part in path.split("+") if part]

        x = torch.from_numpy(np.ascontiguousarray(reference_inputs(data.images, spec.mean, spec.std).transpose(0, 3, 1, 2)))
        found: dict[int, np.ndarray] = {}
        with torch.no_grad():
            for k, path in enumerate(spec.blocks, start=1):
                for module in modules(path):
                    x = module(x)
                if k in depths:
                    pooled = x.mean(dim=(2, 3), keepdim=True)
                    if k == len(spec.blocks):
                        for module in (m for path in spec.options.get("post_pool", []) for m in modules(path)):
                            pooled = module(pooled)
                    found[k] = torch.flatten(pooled, 1).numpy()
        return found
