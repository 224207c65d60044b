"""Frozen-prefix activations, computed once per process and shared by every trial.

Blocks below the freeze point keep their pretrained weights and run with BatchNorm
in inference mode, so their output for a given image never changes: computing it
once and reusing it across trials is exact, not an approximation.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from automl_tl.activation_cache import ActivationCache, PrefixActivations
from automl_tl.types import ImageTable

from .model import BlockStack

INFERENCE_BATCH = 128


def normalised_images(data: ImageTable, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """The whole table as a normalised float32 NCHW tensor."""
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return images.sub_(mean_t).div_(std_t).contiguous()


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """Image-like batches in channels-last layout: 2-2.4x faster convolution training on CPU (bench notes)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
    outputs = []
    with torch.no_grad():
        for start in range(0, inputs.shape[0], INFERENCE_BATCH):
            outputs.append(fn(channels_last(inputs[start : start + INFERENCE_BATCH].to(device))).cpu())
    return torch.cat(outputs)


class PrefixFeatures(PrefixActivations):
    """Frozen-prefix activations of a torch BlockStack (tensors, NCHW)."""

    def __init__(self, cache: ActivationCache, backbone_name: str, data: ImageTable, stack: BlockStack,
                 mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> None:
        super().__init__(cache, backbone_name, data, len(stack.blocks))
        self.stack, self.mean, self.std, self.device = stack, mean, std, device

    def normalised_images(self) -> torch.Tensor:
        return normalised_images(self.data, self.mean, self.std)

    def run_blocks(self, inputs: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        self.stack.eval()
        return _batched(lambda x: self.stack.run_blocks(x, start, stop), inputs, self.device)

    def pool(self, top: torch.Tensor) -> torch.Tensor:
        self.stack.eval()
        return _batched(self.stack.pool_features, top, self.device)


def split_tensor(values: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
    return values[torch.from_numpy(np.asarray(indices, dtype=np.int64))]
