"""What a search trains with: image size, resize rule and epochs, chosen (``auto``) or given, with reasons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from automl_tl.data.resolution import AUTO, NativeSizes, choose_image_size, study_rule, typical_shorter_side
from automl_tl.storage.stored_attrs import recorded_input
from automl_tl.training.schedule import auto_epochs
from automl_tl.types import BackboneSpec, DataSplits, ResizeRule


@dataclass(frozen=True)
class StudyInput:
    """The size, rule and epochs of a study, and why."""

    image_size: int
    rule: ResizeRule
    size_why: str
    epochs: int
    epochs_why: str


def study_input(specs: Sequence[BackboneSpec], splits: DataSplits, url: str, name: str, *, image_size: str | int,
                epochs: str | int, resize: str | None, timeout: float | None) -> StudyInput:
    """``image_size`` and ``epochs`` are ``"auto"`` or numbers, ``resize`` a mode or None (the default,
    crop). A study that exists keeps what it began with under ``auto`` and without ``--resize``; an
    explicit value must match it, or the fingerprint refuses the resume and says what changed."""
    rule, rule_why = study_rule(specs, resize or "crop")
    recorded = recorded_input(url, name)
    if recorded is not None and resize is None:
        rule = recorded[1]
    began = "the study began with it"
    if epochs != AUTO:
        chosen_epochs, epochs_why = int(epochs), "--epochs"
    elif recorded is not None:
        chosen_epochs, epochs_why = recorded[2], began
    else:
        train = len(splits.indices("train"))
        chosen_epochs, epochs_why = auto_epochs(train), f"auto: about 600 steps over {train} training images"
    if image_size != AUTO:
        size, size_why = int(image_size), "--image-size"
    elif recorded is not None:
        size, size_why = recorded[0], began
    else:
        resolution = choose_image_size(typical_shorter_side(splits.items), NativeSizes.of(specs), len(splits.items),
                                       timeout)
        size, size_why = resolution.image_size, f"auto: {resolution.reason}; {rule_why}"
    return StudyInput(size, rule, size_why, chosen_epochs, epochs_why)
