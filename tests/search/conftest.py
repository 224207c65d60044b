"""Fixtures of the search tests."""

from __future__ import annotations

import pytest

from automl_tl.data import FolderDataset, load_table
from automl_tl.types import ImageTable


@pytest.fixture
def table(small_sample) -> ImageTable:
    """The small sample read at 16 px, for in-process searches of the stub framework."""
    return load_table(FolderDataset().discover(str(small_sample)), 16, show_progress=False)
