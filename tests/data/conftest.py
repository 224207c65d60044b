"""Fixtures of the data tests."""

from tests.support.notices import inbox  # noqa: F401  (the caches' notices a test receives)
