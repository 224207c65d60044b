"""What changed in a study's data, said when the study refuses to resume on it.

A study records an inventory of its images when it is made (``DATA_INVENTORY_ATTR``): per class, its image count
and, while the whole data has at most ``INVENTORY_FILES`` images, one 16-hex-digit entry per image (8 digits of the
SHA-1 of its path, 8 of its content hash), so the stored size stays bounded (about 16 bytes an image, 160 kB at most).
Against the images found now that says which classes were added or removed and, per class, how many images were
added, removed or changed (the same path with other bytes; a relabelled image is removed from one class and added
to another). Above the limit only the counts and a digest per class are kept: the note then gives the counts, and
whether a class's images changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from automl_tl.types import ImageTable

INVENTORY_FILES = 10_000  # above this many images, only counts and a digest per class are kept
ENTRY = 16  # hex digits per image: 8 of its path's SHA-1, 8 of its content hash


def _entries(table: ImageTable) -> dict[str, list[str]]:
    """Each class's images as sorted entries (path part, content part)."""
    per_class: dict[str, list[str]] = {name: [] for name in table.class_names}
    hashes = table.content_hashes or ("",) * len(table.relpaths)
    for path, label, content in zip(table.relpaths, table.labels, hashes):
        path_part = hashlib.sha1(path.encode("utf-8")).hexdigest()[:8]
        per_class[table.class_names[int(label)]].append(path_part + (content[:8] or "0" * 8))
    return {name: sorted(entries) for name, entries in per_class.items()}


def data_inventory(table: ImageTable) -> dict[str, Any]:
    """What the study keeps of its images to say later what changed (see the module's docstring)."""
    detailed = len(table.relpaths) <= INVENTORY_FILES
    inventory: dict[str, Any] = {}
    for name, entries in _entries(table).items():
        joined = "".join(entries)
        inventory[name] = {"count": len(entries), "digest": hashlib.sha256(joined.encode()).hexdigest()[:16],
                           **({"images": joined} if detailed else {})}
    return inventory


def _split(joined: str) -> dict[str, str]:
    return {joined[i : i + 8]: joined[i + 8 : i + ENTRY] for i in range(0, len(joined), ENTRY)}


def _class_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """How one class's images changed, or None when they did not."""
    if before.get("digest") == after.get("digest") and before.get("count") == after.get("count"):
        return None
    if "images" not in before or "images" not in after:
        return f"{before.get('count')} -> {after.get('count')} images, and their content changed"
    old, new = _split(str(before["images"])), _split(str(after["images"]))
    added, removed = len(new.keys() - old.keys()), len(old.keys() - new.keys())
    changed = sum(1 for path in old.keys() & new.keys() if old[path] != new[path])
    parts = [f"{n} {what}" for n, what in ((added, "added"), (removed, "removed"), (changed, "changed")) if n]
    return f"{', '.join(parts) or 'reordered'} ({before.get('count')} -> {after.get('count')} images)"


def describe_data_change(recorded: Any, table: ImageTable) -> str | None:
    """The data's change since ``recorded`` (a study's inventory), in one sentence; None without an inventory."""
    if not isinstance(recorded, dict) or not recorded:
        return None
    now = data_inventory(table)
    # Another study's record (or an older version's) may hold anything: a class entry that is not a mapping
    # counts as one with nothing known of it, so the refusal is still said.
    recorded = {str(name): entry if isinstance(entry, Mapping) else {} for name, entry in recorded.items()}
    added = [f"{name!r} ({now[name]['count']} images)" for name in now if name not in recorded]
    removed = [f"{name!r} ({recorded[name].get('count')} images)" for name in recorded if name not in now]
    parts = []
    if added:
        parts.append(f"class{'es' if len(added) > 1 else ''} added: {', '.join(added)}")
    if removed:
        parts.append(f"class{'es' if len(removed) > 1 else ''} removed: {', '.join(removed)}")
    for name in sorted(now.keys() & recorded.keys()):
        change = _class_change(recorded[name], now[name])
        if change is not None:
            parts.append(f"{name!r}: {change}")
    if not parts:
        return None
    shown = parts[:12] + ([f"and {len(parts) - 12} more classes changed"] if len(parts) > 12 else [])
    return "the data changed: " + "; ".join(shown)
