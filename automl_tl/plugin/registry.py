"""Named registries that plugins fill through their ``register`` callbacks."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterator
from typing import Generic, TypeVar

from automl_tl.errors import UserError

__all__ = ["DuplicateNameError", "Registry"]

T = TypeVar("T")


class DuplicateNameError(UserError):
    """Two plugins registered the same name."""


class Registry(Generic[T]):
    """A mapping from name to item that remembers which plugin added each one.

    Duplicates are errors (never silently renamed), and an unknown name gets a
    "did you mean" suggestion.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._owners: dict[str, str] = {}

    def add(self, name: str, item: T, owner: str) -> None:
        """Add ``item`` as ``name``, registered by the plugin ``owner``; a name taken already is an error."""
        if not isinstance(name, str) or not name:
            raise UserError(f"Plugin {owner!r} registered a {self.kind} without a name.")
        if name in self._items:
            raise DuplicateNameError(
                f"The {self.kind} {name!r} is registered twice: by plugin {self._owners[name]!r} "
                f"and by plugin {owner!r}. Uninstall or disable one of them "
                f"(AUTOML_TL_LOAD_PLUGINS limits which plugins load)."
            )
        self._items[name] = item
        self._owners[name] = owner

    def get(self, name: str) -> T:
        """The item registered as ``name``; an unknown name is a ``UserError`` with close matches."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(self._items)) or "none"
            raise UserError(f"Unknown {self.kind} {name!r}.{hint} Known: {known}.") from None

    def owner(self, name: str) -> str:
        """The name of the plugin that registered ``name``."""
        return self._owners[name]

    def names(self, patterns: str | list[str] | None = None) -> list[str]:
        """Names in registration order, filtered by comma-separated shell-style patterns."""
        if patterns is None:
            return list(self._items)
        if isinstance(patterns, str):
            patterns = [p.strip() for p in patterns.split(",") if p.strip()]
        return [n for n in self._items if any(fnmatch.fnmatchcase(n, p) for p in patterns)]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs in registration order."""
        return list(self._items.items())
