"""What a framework adapter is given to build one model that averages several trials (``combine``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automl_tl.types import BackboneSpec, Preprocessing, TrialConfig

__all__ = ["EnsembleMember"]


@dataclass(frozen=True)
class EnsembleMember:
    """One trial of an ensemble, as the adapter's ``load`` rebuilt it.

    ``weight``: how many selection rounds picked it (the average is weighted by it). ``pristine_blocks``:
    how many leading blocks still hold the backbone's pretrained weights (all kept blocks for a trial
    whose best epoch trained the head only, the frozen ones for a fine-tuned trial, none for a backbone
    trained from scratch). Members of one backbone share those: an adapter computes the common
    pretrained prefix once and branches off where each member's own weights begin.
    ``preprocessing``: the member's own normalisation (its backbone's mean and std).
    """

    trial: int
    spec: BackboneSpec
    config: TrialConfig
    model: Any
    weight: int
    pristine_blocks: int
    preprocessing: Preprocessing
