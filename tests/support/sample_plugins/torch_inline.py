"""A tiny torch backbone declared inline, the way a plugin author would declare one."""

from __future__ import annotations

import torch
from torch import nn

from automl_tl.hookspecs import hookimpl
from automl_tl.testing import synthetic_table
from automl_tl.types import BackboneSpec, ImageTable, WeightsInfo


def _tiny_model(pretrained: bool) -> nn.Module:
    if pretrained:
        torch.manual_seed(1234)  # stands in for a fixed pretrained checkpoint
    model = nn.Module()
    model.features = nn.Sequential(
        *[nn.Sequential(nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=2 if i % 2 else 1, padding=1), nn.BatchNorm2d(8), nn.ReLU())
          for i in range(4)]
    )
    return model


def tiny_spec(name: str = "tiny_cnn", pretrained: bool = True) -> BackboneSpec:
    return BackboneSpec(
        name=name, framework="torch", factory=_tiny_model, blocks=tuple(f"features.{i}" for i in range(4)), feature_dim=8,
        default_image_size=16,
        weights=WeightsInfo(source="seeded stand-in", is_available=lambda: True) if pretrained else None,
    )


@hookimpl
def register_backbones(register):
    """Registers the tiny backbone."""
    register(tiny_spec())


def random_table(n_per_split: int = 16, size: int = 16, classes: int = 2, seed: int = 0) -> ImageTable:
    return synthetic_table(n_per_split=n_per_split, size=size, classes=classes, seed=seed)
