"""A train/val/test split that never moves an image once it has been assigned."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from automl_tl.errors import UserError
from automl_tl.types import SPLITS, DataSplits, ImageItem

__all__ = ["make_splits", "path_unit_hash", "stable_split"]


def path_unit_hash(relpath: str) -> float:
    """Map a relative path (already in POSIX form, as adapters give it) to [0, 1) with sha256."""
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def stable_split(
    relpaths: Sequence[str],
    labels: Sequence[int],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> tuple[str, ...]:
    """Assign each item to "train", "val" or "test"; returns one name per item.

    Step 1 (stable): each item's relative path, in POSIX form, is hashed with sha256
    to ``u`` in [0, 1). ``u < val_fraction`` gives "val", ``u < val_fraction +
    test_fraction`` gives "test", anything else "train". An item's split depends only
    on its own path, so adding or removing images never moves the others.

    Step 2 (every class represented, deterministic): per class, in the order train,
    val, test, a split that the class has no item in, and that it should have, takes
    one item from a donor split of the same class: train when it has at least two
    items, otherwise whichever other split has the most (ties: train, val, test
    order). The donor gives up its item with the highest hash. A class "should have"
    a train item when it has at least one item, and a val (test) item when it has at
    least three items and ``val_fraction`` (``test_fraction``) is above zero. So in
    the common case a class with no val item moves its highest-hash train item to
    val. Only these rescued items in tiny classes can move when images are added.
    """
    if len(relpaths) != len(labels):
        raise ValueError(f"{len(relpaths)} paths but {len(labels)} labels")
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise UserError(
            f"The validation fraction ({val_fraction}) and test fraction ({test_fraction}) must each be "
            f"between 0 and 1 and add up to less than 1, so that some images are left for training."
        )
    hashes = [path_unit_hash(p) for p in relpaths]
    split = []
    for u in hashes:
        if u < val_fraction:
            split.append("val")
        elif u < val_fraction + test_fraction:
            split.append("test")
        else:
            split.append("train")

    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[int(label)].append(index)
    wanted_fraction = {"train": 1.0, "val": val_fraction, "test": test_fraction}
    for members in by_class.values():
        for name in SPLITS:
            needed = len(members) >= (1 if name == "train" else 3) and wanted_fraction[name] > 0
            if not needed or any(split[i] == name for i in members):
                continue
            donor = _donor(members, split, exclude=name)
            moved = max((i for i in members if split[i] == donor), key=lambda i: (hashes[i], relpaths[i]))
            split[moved] = name
    return tuple(split)


def _donor(members: list[int], split: list[str], exclude: str) -> str:
    """The split that gives up an item: train if it can spare one, else the largest other."""
    counts = {name: sum(1 for i in members if split[i] == name) for name in SPLITS if name != exclude}
    if counts.get("train", 0) >= 2:
        return "train"
    return max(counts, key=lambda name: (counts[name], -SPLITS.index(name)))


def make_splits(root: Path, source: str, class_names: tuple[str, ...], items: tuple[ImageItem, ...],
                val_fraction: float, test_fraction: float) -> DataSplits:
    """DataSplits for discovered items, with the stable split applied: what a dataset adapter's
    ``discover`` returns.

    ``root`` is the folder the items' ``relpath`` is relative to, ``source`` a short description for
    messages (``"csv /data/labels.csv"``), ``class_names`` the classes in label order and ``items`` the
    ``ImageItem`` s found. ``val_fraction`` and ``test_fraction`` are the shares ``stable_split`` sends
    to validation and test (the built-in adapters use 0.15 each). Every class needs an image in each
    split it is split into (train, and val and test when their fractions are above zero): a smaller
    class is refused with a ``UserError`` naming it and its count."""
    uses = ["training"] + ["validation"] * (val_fraction > 0) + ["test"] * (test_fraction > 0)
    needed = len(uses)
    counts = Counter(item.label for item in items)
    small = [(name, counts[label]) for label, name in enumerate(class_names) if counts[label] < needed]
    if small:
        listed = ", ".join(f"{name!r} ({count} image{'' if count == 1 else 's'})" for name, count in small)
        each = ", ".join(uses[:-1]) + " and " + uses[-1] if len(uses) > 1 else uses[0]
        raise UserError(
            f"In {source}, class(es) {listed} have too few images: each class needs at least {needed}, one each for "
            f"{each}, or it would be trained on or judged by nothing. Add images to "
            f"{'that class' if len(small) == 1 else 'those classes'}, or remove {'it' if len(small) == 1 else 'them'}."
        )
    split = stable_split([item.relpath for item in items], [item.label for item in items], val_fraction, test_fraction)
    return DataSplits(root=root, source=source, class_names=class_names, items=items, split=split)
