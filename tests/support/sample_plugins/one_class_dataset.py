"""A third-party dataset adapter that is wrong on purpose: it finds a single class.

Loaded with ``--plugin tests/support/sample_plugins/one_class_dataset.py``; it claims DATA arguments ending in
``.oneclass`` (the file's lines are image paths) and labels every image as the one class "all".
Without the core's checks of what adapters return, a search on it reports validation accuracy 1.0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from automl_tl.data.split import make_splits
from automl_tl.hookspecs import hookimpl
from automl_tl.types import DatasetAdapter, DataSplits, ImageItem


class OneClassDataset:
    """Every image listed in a ``.oneclass`` file, all of one class."""

    name = "one_class"

    def claims(self, location: str) -> bool:
        return location.endswith(".oneclass")

    def discover(self, location: str) -> DataSplits:
        listing = Path(location)
        root = listing.parent
        relpaths = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        items = tuple(ImageItem(path=(root / rel).resolve(), relpath=rel, label=0) for rel in relpaths)
        return make_splits(root, f"one-class list {listing}", ("all",), items, 0.15, 0.15)


@hookimpl
def register_datasets(register: Callable[[DatasetAdapter], None]) -> None:
    """The one-class adapter."""
    register(OneClassDataset())
