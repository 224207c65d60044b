"""The adapter conformance suite, ready for a Keras backbone: a plugin's test only names its spec."""

from __future__ import annotations

from typing import Any

import numpy as np

from automl_tl.testing import AdapterConformance, reference_inputs
from automl_tl.types import BackboneSpec, FrameworkAdapter, ImageTable

from .adapter import KerasAdapter
from .cut_points import OUTPUT, input_of

__all__ = ["KerasBackboneConformance"]


class KerasBackboneConformance(AdapterConformance):
    """Subclass as ``TestMyBackbone`` and implement ``make_spec()`` to run every conformance check.

    Keras is slower per step than torch on these tiny tables, and its compiled training rounds a little
    differently between two runs: determinism is checked to 1e-4."""

    determinism_tolerance = 1e-4

    def make_adapter(self) -> FrameworkAdapter:
        return KerasAdapter()

    def seed_framework(self, seed: int) -> None:
        from .model import keras

        keras.utils.set_random_seed(seed)

    def reference_features(self, spec: BackboneSpec, data: ImageTable, depths: list[int]) -> dict[int, np.ndarray]:
        """The factory's model itself, read at each block's cut point (a layer's output, ``input:LAYER``: the
        tensor that layer reads, ``<output>``: the model's), then a plain spatial mean."""
        from .model import keras

        base = spec.factory(spec.pretrained)

        def tensor(name: str) -> Any:
            if name == OUTPUT:
                return base.output
            target = input_of(name)
            return base.get_layer(target).input if target is not None else base.get_layer(name).output

        wanted = sorted(depths)
        reader = keras.Model(base.input, [tensor(spec.blocks[k - 1]) for k in wanted])
        outputs = reader.predict(reference_inputs(data.images, spec.mean, spec.std), batch_size=64, verbose=0)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return {k: np.asarray(out, dtype=np.float32).mean(axis=(1, 2)) for k, out in zip(wanted, outputs, strict=True)}
