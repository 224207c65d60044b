"""Duplicate groups: exact ones by content hash, and what kind each group is.

A group that spans more than one split (train, val, test) is a ``leak``: a model is scored on an image it
trained on (or chosen by one), so every score is inflated. That kind wins over the others, as it is the one
``search --strict`` refuses. Otherwise a group whose files carry different labels is ``across_classes``
(at least one label is wrong, and a model is taught both), and the rest ``within_class`` (harmless for
the scores, but the image weighs double).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from automl_tl.audit.report import DuplicateGroup

KIND_ORDER = ("leak", "across_classes", "within_class")  # most serious first: the order lists are cut in


def group_kind(classes: Sequence[str], splits: Sequence[str]) -> str:
    """``leak`` when the files span splits, else ``across_classes`` when their labels differ, else ``within_class``."""
    if len(set(splits)) > 1:
        return "leak"
    return "across_classes" if len(set(classes)) > 1 else "within_class"


def make_group(members: Sequence[int], files: Sequence[str], classes: Sequence[str], splits: Sequence[str],
               distance: int | None = None) -> DuplicateGroup:
    """The group of the images ``members`` (indices into the parallel ``files``, ``classes`` and ``splits``)."""
    ordered = sorted(members, key=lambda i: files[i])
    group_classes = [classes[i] for i in ordered]
    group_splits = [splits[i] for i in ordered]
    return DuplicateGroup([files[i] for i in ordered], group_classes, group_splits,
                          group_kind(group_classes, group_splits), distance)


def by_seriousness(groups: list[DuplicateGroup]) -> list[DuplicateGroup]:
    """Leaks first, then groups across classes, then the rest; larger groups first within a kind."""
    return sorted(groups, key=lambda g: (KIND_ORDER.index(g.kind), -len(g.files), g.files))


def exact_duplicates(hashes: Sequence[str], files: Sequence[str], classes: Sequence[str],
                     splits: Sequence[str]) -> list[DuplicateGroup]:
    """Groups of two or more files with the same content hash (an empty hash, an unread file, never matches)."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, digest in enumerate(hashes):
        if digest:
            members[digest].append(index)
    return by_seriousness([make_group(found, files, classes, splits) for found in members.values() if len(found) > 1])
