"""The ``inbox`` fixture: the caches' notices (``CacheNotice`` warnings) a test receives, to take and check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automl_tl.runtime.notices import NoticeInbox, receiving_notices


@pytest.fixture
def inbox() -> Iterator[NoticeInbox]:
    """Every cache notice issued during the test, in an inbox (``inbox.take()`` as the search's display does)."""
    with receiving_notices() as inbox:
        yield inbox
