"""Class names that a reader cannot tell apart are one mistake, not two classes.

"a" and " a", "a b" and "a  b", or "é" written as one code point and as "e" plus a combining accent
print the same in a table, a report or a prediction, so a model that had both would name two classes
one way. Names are compared by ``label_key``: Unicode NFC, whitespace runs as one space, none at either
end. Case and compatibility forms ("Cat" and "cat", "x2" and "x²") still differ: data sets use them
for different classes (upper- and lower-case letters, for one)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["label_key", "look_alike"]


def label_key(name: str) -> str:
    """``name`` as a reader sees it: NFC-normalised, inner whitespace runs as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def look_alike(names: Iterable[str]) -> tuple[str, str] | None:
    """The first two different names whose ``label_key`` is the same, in the order given; None if none."""
    first: dict[str, str] = {}
    for name in names:
        key = label_key(name)
        earlier = first.setdefault(key, name)
        if earlier != name:
            return earlier, name
    return None
