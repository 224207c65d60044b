"""One torch graph averaging several trials' probabilities, each shared pretrained prefix computed once."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from automl_tl.ensemble_types import EnsembleMember
from automl_tl.types import Preprocessing

from .model import BlockStack, Classifier


class MemberTail(nn.Module):
    """A member's own part: its blocks from where the shared prefix stops, pooling and head."""

    def __init__(self, classifier: Classifier, start: int) -> None:
        super().__init__()
        self.start = start
        self.blocks = nn.ModuleList(list(classifier.backbone.blocks[start:]))
        self.pool = classifier.backbone.pool
        self.post_pool = classifier.backbone.post_pool
        self.head = classifier.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return torch.softmax(self.head(torch.flatten(self.post_pool(self.pool(x)), 1)), dim=1)


class BackboneGroup(nn.Module):
    """The members of one backbone: the pretrained blocks they all begin with (run once, up to the
    deepest member's branch point), and each member's tail, fed from the block where it branches off."""

    def __init__(self, members: Sequence[EnsembleMember]) -> None:
        super().__init__()
        first = members[0]
        self.register_buffer("mean", torch.tensor(first.preprocessing.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(first.preprocessing.std, dtype=torch.float32).view(1, 3, 1, 1))
        # Pristine blocks are the same modules in every member (copies of the pretrained prototype): take
        # them from the member that keeps the most of them.
        deepest = max(members, key=lambda m: m.pristine_blocks)
        self.trunk = nn.ModuleList(list(deepest.model.backbone.blocks[: deepest.pristine_blocks]))
        self.branch_points = [m.pristine_blocks for m in members]
        self.tails = nn.ModuleList([MemberTail(m.model, m.pristine_blocks) for m in members])
        self.register_buffer("weights", torch.tensor([float(m.weight) for m in members], dtype=torch.float32))

    mean: torch.Tensor
    std: torch.Tensor
    weights: torch.Tensor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Weighted sum of the members' probabilities for NCHW images in [0, 1]."""
        x = (images - self.mean) / self.std
        taps = {0: x}
        for index, block in enumerate(self.trunk):
            x = block(x)
            taps[index + 1] = x
        total = torch.zeros(())
        for position, (start, tail) in enumerate(zip(self.branch_points, self.tails)):
            total = total + self.weights[position] * tail(taps[start])
        return total


class EnsembleClassifier(nn.Module):
    """Normalised NCHW in (by the ensemble's recorded preprocessing, as a single trial's model takes it),
    log of the weighted mean of the members' probabilities out: the exporter's softmax turns it back into
    that mean, so an ensemble exports, predicts and checks parity exactly as one trial does."""

    def __init__(self, members: Sequence[EnsembleMember], preprocessing: Preprocessing) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("input_std", torch.tensor(preprocessing.std, dtype=torch.float32).view(1, 3, 1, 1))
        groups: dict[str, list[EnsembleMember]] = {}
        for member in members:
            key = member.spec.name if member.spec.pretrained else f"{member.spec.name}#{member.trial}"
            groups.setdefault(key, []).append(member)
        self.groups = nn.ModuleList([BackboneGroup(group) for group in groups.values()])
        self.total_weight = float(sum(m.weight for m in members))

    input_mean: torch.Tensor
    input_std: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x * self.input_std + self.input_mean  # back to [0, 1]: each backbone normalises its own way
        total = torch.zeros(())
        for group in self.groups:
            total = total + group(images)
        return torch.log(torch.clamp(total / self.total_weight, min=1e-12))


def combine(members: Sequence[EnsembleMember], preprocessing: Preprocessing) -> EnsembleClassifier:
    """The members (``load``-ed classifiers) as one graph; see ``EnsembleMember.pristine_blocks``."""
    return EnsembleClassifier(members, preprocessing).eval()


def pristine_block_count(model: Classifier, prototype: BlockStack | None, claimed: int) -> int:
    """How many leading blocks of ``model`` really equal the pretrained ``prototype``'s, at most ``claimed``:
    a member whose weights say otherwise keeps its blocks to itself rather than share wrong ones."""
    if prototype is None:
        return 0
    count = 0
    for own, pretrained in zip(model.backbone.blocks[:claimed], prototype.blocks):
        own_state, pretrained_state = own.state_dict(), pretrained.state_dict()
        if own_state.keys() != pretrained_state.keys() or not all(
                torch.equal(own_state[k].cpu(), pretrained_state[k].cpu()) for k in own_state):
            break
        count += 1
    return count
