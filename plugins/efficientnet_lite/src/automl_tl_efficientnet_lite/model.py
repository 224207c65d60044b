"""EfficientNet-Lite0, Lite1 and Lite2 rearranged as named blocks that run one after the other.

``efficientnet_lite_pytorch`` applies the stem's and head's activations inside ``forward``, so the
network is regrouped here into modules a backbone can be cut between: ``stem``, ``blocks.0`` ..
``blocks.<n-1>`` and ``head``. The modules and their weights are the package's own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class EfficientNetLite(nn.Module):
    def __init__(self, net: Any) -> None:
        super().__init__()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = nn.ModuleList(net._blocks)  # MBConv blocks; drop-connect is off when called as block(x)
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def package_network(model_name: str, weights_path: str | None) -> Any:
    """The package's own network ``model_name`` (``"efficientnet-lite1"``), with the ImageNet weights at
    ``weights_path`` (loaded as tensors only, every key matched) or random ones."""
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None: TensorFlow's "same" padding computed for each input size, as the weights were
    # trained with, instead of padding fixed for the native size (which fails on small maps).
    net = EfficientNet.from_name(model_name, image_size=None)
    if weights_path is not None:
        net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True), strict=True)
    return net


def efficientnet_lite(model_name: str, weights_path: str | None) -> EfficientNetLite:
    """The network ``model_name`` regrouped into named blocks (see ``package_network``)."""
    return EfficientNetLite(package_network(model_name, weights_path))
