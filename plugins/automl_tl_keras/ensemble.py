"""One Keras graph averaging several trials' probabilities, each shared pretrained prefix computed once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automl_tl.ensemble_types import EnsembleMember
from automl_tl.types import Preprocessing

from .model import cut_tensors, keras
from .session import build_base


def _member_branch(member: EnsembleMember, position: int, tap: Any) -> Any:
    """The member's probabilities from the shared tensor ``tap`` (the activation after its pristine blocks)."""
    classifier = member.model  # full_classifier(base, head, top): base.input -> ... -> top -> GAP -> head
    start = classifier.inputs[0]
    if member.pristine_blocks:
        pooling = [layer for layer in classifier.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)][-1]
        backbone = keras.Model(classifier.inputs[0], pooling.input)  # the member's kept blocks, up to its top
        start = cut_tensors(backbone, member.spec.blocks[: member.config.depth(len(member.spec.blocks))])[member.pristine_blocks - 1]
    tail = keras.Model(start, classifier.outputs[0], name=f"member_{position}_trial_{member.trial}")
    return tail(tap)


def combine(members: Sequence[EnsembleMember], preprocessing: Preprocessing, check_base: Any = None) -> Any:
    """Normalised NHWC in (by ``preprocessing``, as one trial's model takes it), the weighted mean of the
    members' probabilities out. Members of one pretrained backbone read their branch points from one
    shared pretrained copy of it, run once."""
    inputs = keras.Input((preprocessing.image_size, preprocessing.image_size, 3), name="normalised_image")
    mean, std = preprocessing.mean, preprocessing.std
    images = keras.layers.Rescaling(scale=[float(s) for s in std], offset=[float(m) for m in mean], name="to_unit_range")(inputs)
    groups: dict[str, list[tuple[int, EnsembleMember]]] = {}
    for position, member in enumerate(members):
        key = member.spec.name if member.spec.pretrained else f"{member.spec.name}#{member.trial}"
        groups.setdefault(key, []).append((position, member))
    total_weight = float(sum(m.weight for m in members))
    branches = []
    for group_index, group in enumerate(groups.values()):
        first = group[0][1]
        own = first.preprocessing
        normalised = keras.layers.Normalization(mean=list(own.mean), variance=[s * s for s in own.std],
                                                name=f"normalise_{group_index}")(images)
        deepest = max(m.pristine_blocks for _, m in group)
        taps: dict[int, Any] = {0: normalised}
        if deepest:
            trunk_base = build_base(first.spec, check_base)
            cuts = cut_tensors(trunk_base, first.spec.blocks)
            points = sorted({m.pristine_blocks for _, m in group if m.pristine_blocks})
            trunk = keras.Model(trunk_base.input, [cuts[p - 1] for p in points], name=f"shared_prefix_{group_index}")
            outputs = trunk(normalised)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            taps.update(dict(zip(points, outputs)))
        for position, member in group:
            probabilities = _member_branch(member, position, taps[member.pristine_blocks])
            branches.append(keras.layers.Rescaling(member.weight / total_weight, name=f"weight_{position}")(probabilities))
    averaged = branches[0] if len(branches) == 1 else keras.layers.Add(name="average")(branches)
    return keras.Model(inputs, averaged, name="automl_tl_ensemble")
