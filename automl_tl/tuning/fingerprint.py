"""A study's fingerprint: what must not change when a study is resumed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from automl_tl.tuning.space import SPACE_LAYOUT

FLAT_LAYOUT = "flat"  # what studies made before the conditional space asked: every parameter of every trial
DATA_CHANGED = "the data changed"  # how the refusal's line about the data begins (search/data_changes.py makes it exact)


LEGACY_RESIZE = "stretch:1:bilinear"  # what studies made before resize rules did to every image
# Parameters a later automl-tl added to the space, and what they search: a study made before one is another search.
ADDED_LATER = {"block_lr_decay": "per-block fine-tuning rates (each block below the top learning slower)",
               "head_fit": "linear heads fitted to convergence (L-BFGS) beside heads trained by Adam",
               "head_l2": "the L2 strength of those fitted heads"}


def make_fingerprint(manifest_hash: str, space: Mapping[str, Any], epochs: int, image_size: int,
                     resize: str = "crop:1:bilinear", cv_folds: int = 0) -> dict[str, Any]:
    """``resize`` is the study's ``ResizeRule.token()``. ``space_layout`` names how trials are asked the
    space's parameters (see search/space.py): the same distributions asked another way are another search.
    ``cv_folds`` is how trials are scored (0: on the validation split): values scored one way cannot be
    ranked against values scored another."""
    return {
        "data_manifest": manifest_hash,
        "search_space": dict(space),
        "space_layout": SPACE_LAYOUT,
        "epochs": epochs,
        "image_size": image_size,
        "resize": resize,
        "cv_folds": cv_folds,
    }


def _space_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(f"parameter {name!r} was removed")
        elif name not in old and name in ADDED_LATER:
            changes.append(f"parameter {name!r} was added: this automl-tl also searches {ADDED_LATER[name]}, which "
                           f"the automl-tl that made the study did not. The old study can still be shown, reported "
                           f"and exported")
        elif name not in old:
            changes.append(f"parameter {name!r} was added")
        elif old[name] != new[name]:
            before, after = old[name].get("attributes", old[name]), new[name].get("attributes", new[name])
            changes.append(f"parameter {name!r} changed from {json.dumps(before)} to {json.dumps(after)}")
    return changes


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two fingerprints; empty when they match."""
    changes = []
    if old.get("data_manifest") != new.get("data_manifest"):
        changes.append(DATA_CHANGED + " (images were added, removed, relabelled or edited)")
    for key, label in (("epochs", "--epochs"), ("image_size", "--image-size")):
        if old.get(key) != new.get(key):
            changes.append(f"{label} changed from {old.get(key)} to {new.get(key)}")
    before, after = old.get("resize", LEGACY_RESIZE), new.get("resize", LEGACY_RESIZE)
    if before != after:
        changes.append(f"the resize rule changed from {before} to {after} (--resize {str(before).split(':')[0]} "
                       f"resumes it)")
    folds_before, folds_after = old.get("cv_folds", 0), new.get("cv_folds", 0)  # 0 before --cv existed
    if folds_before != folds_after:
        changes.append(f"--cv changed from {_cv_text(folds_before)} to {_cv_text(folds_after)}: trials scored one way "
                       f"cannot be ranked against trials scored the other (--cv auto resumes the study as it began)")
    layout_before, layout_after = old.get("space_layout", FLAT_LAYOUT), new.get("space_layout", FLAT_LAYOUT)
    if layout_before != layout_after:
        # Its parameters' ranges differ too, as a consequence: listing them would only obscure why.
        changes.append(_layout_change(layout_before, layout_after))
    else:
        changes.extend(_space_changes(old.get("search_space", {}), new.get("search_space", {})))
    return changes


def _cv_text(folds: int) -> str:
    return f"{folds} folds" if folds > 1 else "off"


def _layout_change(before: str, after: str) -> str:
    if before == FLAT_LAYOUT:
        return ("the study was made by an earlier automl-tl, whose search space asked every trial every parameter; "
                "this version asks a trial only the parameters it uses (nothing about fine-tuning for a head-only "
                "trial, nothing about transfer for a backbone trained from scratch), which is a different search. "
                "The old study can still be shown, reported and exported")
    return f"the search space's layout changed from {before!r} to {after!r}"
