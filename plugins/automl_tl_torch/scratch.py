"""A small CNN trained from scratch: the candidate that tells the search when transfer does not pay."""

from __future__ import annotations

from typing import Any

from automl_tl.types import BackboneSpec

SMALL_CNN_WIDTHS = (32, 64, 128)


def build_small_cnn(pretrained: bool = False) -> Any:
    """Three conv-BN-ReLU blocks (``block1``..``block3``), the first two followed by 2x2 max pooling.
    The first convolution has stride 2, so the network works at half the study's image size (24 px
    at the default 48): a modest resolution, where training from scratch is cheap. There are no
    pretrained weights: ``pretrained`` is part of the factory interface and ignored."""
    from torch import nn

    model = nn.Module()
    channels = 3
    for i, width in enumerate(SMALL_CNN_WIDTHS, start=1):
        stride = 2 if i == 1 else 1
        parts: list[nn.Module] = [nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        if i < len(SMALL_CNN_WIDTHS):
            parts.append(nn.MaxPool2d(2))
        model.add_module(f"block{i}", nn.Sequential(*parts))
        channels = width
    return model


def small_cnn_spec() -> BackboneSpec:
    """``small_cnn``: no ``weights``, so the core treats it as from scratch and labels it so."""
    return BackboneSpec(
        name="small_cnn",
        framework="torch",
        factory=build_small_cnn,
        blocks=tuple(f"block{i}" for i in range(1, len(SMALL_CNN_WIDTHS) + 1)),
        feature_dim=SMALL_CNN_WIDTHS[-1],
        default_image_size=32,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        weights=None,
        crop_pct=None,  # trained here, on whatever the study's other backbones are fed
    )
