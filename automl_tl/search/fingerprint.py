"""A study's fingerprint: what must not change when a study is resumed."""

from __future__ import annotations

import json
from typing import Any, Mapping

FINGERPRINT_ATTR = "fingerprint"


LEGACY_RESIZE = "stretch:1:bilinear"  # what studies made before resize rules did to every image


def make_fingerprint(manifest_hash: str, space: Mapping[str, Any], epochs: int, image_size: int,
                     resize: str = "crop:1:bilinear") -> dict[str, Any]:
    """``resize`` is the study's ``ResizeRule.token()``."""
    return {
        "data_manifest": manifest_hash,
        "search_space": dict(space),
        "epochs": epochs,
        "image_size": image_size,
        "resize": resize,
    }


def _space_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(f"parameter {name!r} was removed")
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
        changes.append("the data changed (images were added, removed, relabelled or edited)")
    for key, label in (("epochs", "--epochs"), ("image_size", "--image-size")):
        if old.get(key) != new.get(key):
            changes.append(f"{label} changed from {old.get(key)} to {new.get(key)}")
    before, after = old.get("resize", LEGACY_RESIZE), new.get("resize", LEGACY_RESIZE)
    if before != after:
        changes.append(f"the resize rule changed from {before} to {after} (--resize {str(before).split(':')[0]} "
                       f"resumes it)")
    changes.extend(_space_changes(old.get("search_space", {}), new.get("search_space", {})))
    return changes
