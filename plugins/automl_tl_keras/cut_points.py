"""How a Keras backbone names its block ends (cut points), for plugin authors and for the adapter.

A block ends at a layer whose output is the only tensor that later layers read (a clean cut of the
graph). A block end is written as one of:

- ``LAYER``: the output of the layer of that name;
- ``input:LAYER``: the tensor that layer ``LAYER`` reads, for a cut after an operation that is not a layer;
- ``OUTPUT`` (``"<output>"``): the model's own output, which the last block always ends at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OUTPUT = "<output>"
INPUT_OF = "input:"


def input_of(name: str) -> str | None:
    """The layer whose input a cut point names, or None when it names a layer's output (or the model's)."""
    return name[len(INPUT_OF):] if name.startswith(INPUT_OF) else None


def block_layers(base: Any, blocks: Sequence[str], index: int) -> list[Any]:
    """The layers of the Keras model ``base`` from the end of block ``index - 1`` (exclusive) to the end of
    block ``index`` (inclusive), ``blocks`` being the backbone's cut points."""
    layers = base.layers

    def end(name: str) -> int:
        if name == OUTPUT:
            return len(layers) - 1
        target = input_of(name)
        return layers.index(base.get_layer(target)) - 1 if target is not None else layers.index(base.get_layer(name))

    start = 0 if index == 0 else end(blocks[index - 1]) + 1
    return list(layers[start : end(blocks[index]) + 1])
