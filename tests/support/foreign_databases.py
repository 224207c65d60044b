"""Databases that are not automl-tl study stores, as a user may name them with --storage, and what to check
after a command has read one: every byte as it was, and no file left beside it."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

SIDECARS = ("-journal", "-wal", "-shm")


def users_table(path: Path) -> None:
    """Another application's database: one ``users`` table with a row."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO users (name) VALUES ('ada')")
    connection.close()


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def other_alembic(path: Path) -> None:
    """An application managed by alembic: its own ``alembic_version`` row beside its tables."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('1975ea83b712')")
    connection.close()


def text_file(path: Path) -> None:
    path.write_text("name,email\nada,ada@example.org\n")


def write_ahead_log(path: Path) -> None:
    """Another application's database in WAL mode, closed (SQLite creates -wal and -shm files to read
    such a file read-only unless it is opened immutable)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=wal")
    connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    connection.commit()
    connection.close()


NOT_OURS: dict[str, Callable[[Path], None]] = {
    "users": users_table, "zero": zero_bytes, "alembic": other_alembic, "text": text_file, "wal": write_ahead_log,
}
# What the one-paragraph error must say the file is, for each.
WHAT_IT_IS = {
    "users": "is a database of another application (tables: users)",
    "zero": "is an empty file (0 bytes)",
    "alembic": "is a database of another application (tables: accounts, alembic_version)",
    "text": "is not a SQLite database",
    "wal": "is a database of another application (tables: users)",
}


def file_state(path: Path) -> tuple[str, list[str]]:
    """The file's SHA-256 and the SQLite files beside it."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest, sorted(suffix for suffix in SIDECARS if Path(f"{path}{suffix}").exists())
