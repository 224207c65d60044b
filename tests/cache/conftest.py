"""Fixtures of the cache tests."""

from tests.support.notices import inbox  # noqa: F401  (the caches' notices a test receives)
