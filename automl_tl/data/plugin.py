"""The built-in dataset plugin: CSV manifests and folder-per-class data."""

from __future__ import annotations

from collections.abc import Callable

from automl_tl.data.csv_manifest import CsvDataset
from automl_tl.data.folder import FolderDataset
from automl_tl.hookspecs import hookimpl
from automl_tl.types import DatasetAdapter


@hookimpl
def register_datasets(register: Callable[[DatasetAdapter], None]) -> None:
    """Register the CSV manifest adapter ("csv") and the folder-per-class adapter ("folder").

    The CSV adapter comes first: it claims only ``*.csv`` files, the folder adapter
    only directories, so the order matters only for third-party adapters added later.
    """
    register(CsvDataset())
    register(FolderDataset())
