"""What any dataset adapter returns is checked here, before a search trains on it or a report judges by it.

A third-party adapter that finds one class, or puts every image in training, would otherwise run a
whole search and report a validation accuracy of 1.0, or nothing at all."""

from __future__ import annotations

from collections import Counter
from numbers import Integral

from automl_tl.errors import UserError
from automl_tl.runtime.label_names import label_key, look_alike
from automl_tl.types import SPLITS, DataSplits, ImageItem

__all__ = ["DataSplitsError", "check_splits"]


class DataSplitsError(UserError):
    """A dataset adapter returned data that no classifier can be trained and judged on."""


def _problems(splits: DataSplits) -> list[str]:
    """What is wrong with ``splits``, most basic first; empty when nothing is."""
    names = splits.class_names
    if isinstance(names, (str, bytes)) or not all(isinstance(n, str) and n for n in names):
        return [f"class_names {names!r:.120} is not a sequence of non-empty names"]
    problems = []
    twice = [n for n, count in Counter(names).items() if count > 1]
    if twice:
        problems.append(f"the class name(s) {', '.join(repr(n) for n in twice[:5])} appear more than once in class_names")
    blank = [n for n in names if not label_key(n)]
    twins = look_alike(names)
    if blank:
        problems.append(f"the class name {blank[0]!r} is only spaces")
    elif twins is not None:
        problems.append(f"the class names {twins[0]!r} and {twins[1]!r} differ only in spaces or in how an accent is "
                        f"encoded, so they would print as one")
    if len(names) < 2:
        listed = f" ({', '.join(repr(n) for n in names)})" if names else ""
        problems.append(f"{len(names)} class{'' if len(names) == 1 else 'es'}{listed}: a classifier needs at least two "
                        f"classes, or every prediction is right by construction")
    if len(splits.split) != len(splits.items):
        return problems + [f"{len(splits.items)} items but {len(splits.split)} split entries: split holds one of "
                           f"{', '.join(SPLITS)} per item, in the same order"]
    bad_items = [i for i, item in enumerate(splits.items) if not isinstance(item, ImageItem)]
    if bad_items:
        return problems + [f"item {bad_items[0]} is a {type(splits.items[bad_items[0]]).__name__}, not an "
                           f"automl_tl.types.ImageItem"]
    out_of_range = [item for item in splits.items if isinstance(item.label, bool) or not isinstance(item.label, Integral)
                    or not 0 <= int(item.label) < len(names)]
    if out_of_range:
        first = out_of_range[0]
        problems.append(f"{len(out_of_range)} item(s) whose label is not a class index from 0 to {len(names) - 1} "
                        f"(e.g. {first.relpath!r} has label {first.label!r})")
    unknown = sorted({str(s) for s in splits.split if s not in SPLITS})
    if unknown:
        problems.append(f"split entries {', '.join(repr(s) for s in unknown[:5])}: each is one of {', '.join(SPLITS)}")
    if problems:
        return problems
    for name, use in (("train", "train on"), ("val", "choose between trials by")):
        if not any(s == name for s in splits.split):
            problems.append(f"no image in the {name!r} split, so there is nothing to {use}")
    trained = {item.label for item, s in zip(splits.items, splits.split, strict=True) if s == "train"}
    never = [names[label] for label in range(len(names)) if label not in trained]
    if never and len(names) >= 2:
        problems.append(f"class(es) {', '.join(repr(n) for n in never[:5])} without a training image, which the model "
                        f"could never learn")
    return problems


def check_splits(splits: object, adapter: str, owner: str, location: str) -> DataSplits:
    """``splits`` if a classifier can be trained and judged on it; else a ``DataSplitsError`` naming the
    dataset adapter, the plugin that registered it, the DATA argument and what is wrong.

    Checked: it is a ``DataSplits``; at least two distinct class names, none only spaces and no two that
    differ only in spaces or Unicode composition (``runtime.label_names``); one split entry per item, each
    ``train``, ``val`` or ``test`` (so the splits are disjoint and cover every item); every label a class
    index in range; a non-empty training and validation split; and a training image for every class."""
    if not isinstance(splits, DataSplits):
        raise DataSplitsError(
            f"Dataset adapter {adapter!r} (plugin {owner!r}) returned {type(splits).__name__} for DATA {location}; "
            f"discover() must return an automl_tl.types.DataSplits (automl_tl.data.split.make_splits builds one)."
        )
    problems = _problems(splits)
    if problems:
        raise DataSplitsError(
            f"Dataset adapter {adapter!r} (plugin {owner!r}) returned, for DATA {location}: {'; '.join(problems)}. "
            f"Check the data; if it is right, the adapter is at fault: report it to that plugin's authors."
        )
    return splits
