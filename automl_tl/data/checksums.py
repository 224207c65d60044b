"""Checksums of the caches' entry files: written with each entry, checked when an entry is first opened.

An entry (a decoded-image store's or an activation cache's ``.npy``) is checked whole, once per process:
the first open hashes the file (xxh3-128, one sequential read with a small buffer, so the bytes pass
through the page cache, not this process's memory) and compares the digest with the one its sidecar
keeps. The result is remembered for that file (device, inode, size, modification time and the digest
expected), so the trials after the first read it without hashing again; a file replaced or written to
since is checked again. Trials read every row of the entries they open, so checking rows lazily would
hash the same bytes, only later, and a mismatch found mid-epoch would have to undo what those rows
taught (docs/decisions.md, "issue 22").
"""

from __future__ import annotations

import os
from typing import Any

import xxhash

ALGORITHM = "xxh3_128"
READ_BYTES = 4 << 20  # the read buffer while hashing a file
VERIFY = True  # whether entries are checked when opened; only bench/cache_checksum.py turns it off

_VERIFIED: set[tuple[int, int, int, int, str]] = set()


def new_hasher() -> Any:
    """A streaming hasher of this module's algorithm: ``update(bytes)`` in file order, then ``checksum_of``."""
    return xxhash.xxh3_128()


def checksum_of(hasher: Any) -> str:
    """The checksum text a sidecar keeps for what ``hasher`` was fed: ``"xxh3_128:<32 hex digits>"``."""
    return f"{ALGORITHM}:{hasher.hexdigest()}"


def is_checksum(value: object) -> bool:
    """Whether ``value`` is a checksum text as this module writes it."""
    if not isinstance(value, str) or not value.startswith(f"{ALGORITHM}:"):
        return False
    digest = value[len(ALGORITHM) + 1:]
    return len(digest) == 32 and all(c in "0123456789abcdef" for c in digest)


def hash_fd(fd: int) -> str:
    """The checksum of the whole file open as ``fd``, read from its start with ``pread``."""
    hasher, buffer, offset = new_hasher(), bytearray(READ_BYTES), 0
    view = memoryview(buffer)
    while True:
        count = os.preadv(fd, [buffer], offset)
        if count <= 0:
            break
        hasher.update(view[:count])
        offset += count
    return checksum_of(hasher)


def _identity(fd: int, expected: str) -> tuple[int, int, int, int, str]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, expected


def matches(fd: int, expected: str) -> bool:
    """Whether the file open as ``fd`` has the checksum ``expected``: hashed the first time this process
    asks about this file as it is now, remembered after a match. Always True while ``VERIFY`` is off."""
    if not VERIFY:
        return True
    identity = _identity(fd, expected)
    if identity in _VERIFIED:
        return True
    if hash_fd(fd) != expected:
        return False
    _VERIFIED.add(identity)
    return True


def remember(fd: int, checksum: str) -> None:
    """Record that the file open as ``fd`` has ``checksum`` (this process has just written it)."""
    _VERIFIED.add(_identity(fd, checksum))


def forget() -> None:
    """Forget every file checked so far: the next open of each hashes it again (as a new process would)."""
    _VERIFIED.clear()
