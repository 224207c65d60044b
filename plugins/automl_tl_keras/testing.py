"""The adapter conformance suite, ready for a Keras backbone: a plugin's test only names its spec."""

from __future__ import annotations

from typing import Any

import numpy as np

from automl_tl.testing import AdapterConformance, reference_inputs
from automl_tl.types import BackboneSpec, FrameworkAdapter, ImageTable

from .adapter import KerasAdapter
from .cut_points import OUTPUT, input_of

__all__ = ["KerasBackboneConformance"]


def _block_layers(session: Any, index: int) -> list[Any]:
    """The backbone's layers from the end of block ``index - 1`` (exclusive) to the end of block ``index``."""
    layers, blocks = session.base.layers, session.spec.blocks

    def end(name: str) -> int:
        if name == OUTPUT:
            return len(layers) - 1
        target = input_of(name)
        return layers.index(session.base.get_layer(target)) - 1 if target is not None else layers.index(session.base.get_layer(name))

    start = 0 if index == 0 else end(blocks[index - 1]) + 1
    return layers[start : end(blocks[index]) + 1]


class KerasBackboneConformance(AdapterConformance):
    """Subclass as ``TestMyBackbone`` and implement ``make_spec()`` to run every conformance check.

    Keras is slower per step than torch on these tiny tables, and its compiled training rounds a little
    differently between two runs: determinism is checked to 1e-4."""

    determinism_tolerance = 1e-4

    def make_adapter(self) -> FrameworkAdapter:
        return KerasAdapter()

    def block_weights(self, session: Any, index: int) -> list[Any]:
        return [np.array(w) for layer in _block_layers(session, index) for w in layer.get_weights()]

    def head_weights(self, session: Any) -> list[Any]:
        return [np.array(w) for w in session.head.get_weights()]

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
