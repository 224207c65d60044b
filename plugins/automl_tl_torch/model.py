"""Backbone-as-blocks plus a new head, built from a BackboneSpec."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from automl_tl.errors import UserError
from automl_tl.plugin.spec_checks import check_feature_dim, find_blocks
from automl_tl.types import BackboneSpec, TrialConfig

from .small_input_conv import pad_small_inputs


def _module_at(model: nn.Module, path: str) -> nn.Module:
    """``"layer1.0"`` -> that submodule; ``"conv1+bn1"`` -> those modules in sequence."""
    parts = [p for p in path.split("+") if p]
    modules = [model.get_submodule(p) for p in parts]
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)


class BlockStack(nn.Module):
    """A backbone cut into its declared blocks, followed by global pooling.

    ``forward_from(x, start)`` runs blocks ``start..`` on an activation taken after
    block ``start - 1``: that is what lets frozen prefixes be computed once and cached.
    """

    def __init__(self, blocks: Sequence[nn.Module], post_pool: Sequence[nn.Module] = ()) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.post_pool = nn.Sequential(*post_pool)

    def run_blocks(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for block in self.blocks[start:stop]:
            x = block(x)
        return x

    def pool_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.post_pool(self.pool(x)), 1)

    def forward_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        return self.pool_features(self.run_blocks(x, start, len(self.blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)


def build_head(feature_dim: int, hidden_units: int, dropout: float, num_classes: int) -> nn.Sequential:
    """0 hidden units means a linear (softmax) layer, as in the classic bottleneck recipe."""
    if hidden_units <= 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(feature_dim, hidden_units),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden_units, num_classes),
    )


class Classifier(nn.Module):
    """Backbone blocks, pooling, new head. Input: normalised NCHW; output: logits."""

    def __init__(self, backbone: BlockStack, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def build_block_stack(spec: BackboneSpec, pretrained: bool, depth: int | None = None) -> BlockStack:
    """The backbone as blocks; with ``depth``, only the first ``depth`` blocks (a truncated backbone
    pools the last kept block directly, without the layers the full one applies after pooling)."""
    try:
        model = spec.factory(pretrained)
    except Exception as exc:
        if pretrained and not spec.weights_available():
            raise UserError(
                f"The pretrained weights of backbone {spec.name!r} are not available here and could not be "
                f"downloaded ({type(exc).__name__}: {exc}). Put the file in "
                f"{spec.weights.where if spec.weights else 'the framework cache'} or choose another backbone."
            ) from None
        raise
    pad_small_inputs(model)
    depth = len(spec.blocks) if depth is None else depth
    full = depth == len(spec.blocks)
    paths = [*spec.blocks[:depth], *(spec.options.get("post_pool", []) if full else [])]
    found = find_blocks(paths, partial(_module_at, model), lambda: dict(model.named_modules()), spec.name)
    stack = BlockStack(found[:depth], found[depth:])
    if full:  # the declared feature_dim must be what the whole backbone gives
        check_feature_dim(spec, lambda: pooled_width(stack))
    return stack


def feature_dim(spec: BackboneSpec, stack: BlockStack) -> int:
    """Width of the pooled features: declared for the whole backbone, measured for a truncated one."""
    if len(stack.blocks) == len(spec.blocks):
        return spec.feature_dim
    return pooled_width(stack)


def pooled_width(stack: BlockStack) -> int:
    """The width of ``stack``'s pooled features, measured on a 64x64 probe."""
    probe = torch.zeros(1, 3, 64, 64)
    was_training = stack.training
    with torch.no_grad():
        width = int(stack.eval().forward(probe).shape[1])
    stack.train(was_training)
    return width


def truncated_copy(stack: BlockStack, depth: int, share: bool = False) -> BlockStack:
    """The first ``depth`` blocks of a whole backbone (with its post-pooling layers if all are kept),
    copied, or with ``share`` the same modules (for a model that never trains its backbone)."""
    full = depth == len(stack.blocks)
    clone = (lambda modules: modules) if share else copy.deepcopy
    return BlockStack(clone(list(stack.blocks[:depth])), clone(list(stack.post_pool)) if full else [])


def build_classifier(spec: BackboneSpec, num_classes: int, config: TrialConfig, pretrained: bool = True,
                     prototype: BlockStack | None = None, share: bool = False) -> Classifier:
    """The trial's model: the backbone cut at the trial's depth, then a new head of its size.
    ``prototype``, a whole backbone already built with the same weights, is copied instead of
    building (and loading) the backbone again."""
    depth = config.depth(len(spec.blocks))
    stack = truncated_copy(prototype, depth, share) if prototype is not None else build_block_stack(spec, pretrained, depth)
    return Classifier(stack, build_head(feature_dim(spec, stack), config.head_units, config.head_dropout, num_classes))


class NormalisedClassifier(nn.Module):
    """What gets exported: NCHW RGB in [0, 1] in, class probabilities out."""

    def __init__(self, classifier: Classifier, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.classifier = classifier
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    mean: torch.Tensor
    std: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier((x - self.mean) / self.std), dim=1)


class FlipAveraged(nn.Module):
    """A classifier (normalised NCHW in, logits or log-probabilities out) averaged over each image and its
    left-right mirror: both run as one batch, and the log of the mean of their probabilities comes out, so
    the exporter's softmax gives that mean. Per-channel normalisation commutes with mirroring, so
    mirroring the normalised image is mirroring the image."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.softmax(self.inner(torch.cat([x, torch.flip(x, dims=[3])])), dim=1)
        averaged = probabilities.reshape(2, -1, probabilities.shape[1]).mean(dim=0)
        return torch.log(torch.clamp(averaged, min=1e-12))
