"""Whether a database is an Optuna study store, judged by reading it only; and opening one read-only.

Optuna's ``RDBStorage`` creates its tables and stamps ``alembic_version`` when it is constructed, in
whatever database it is given. So before Optuna is let near a database this module reads what is there
(a SQLite file through the standard library opened read-only, any other database through SQLAlchemy's
inspector) and says, in one paragraph, what the database is when it is not a store Optuna can use.
Commands that only read a study then open the store through a read-only connection, with Optuna's table
creation and version stamping skipped, so nothing can be written even by mistake.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from automl_tl.errors import UserError

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_WAL_FORMAT = 2  # bytes 18 and 19 of the header: 1 for a rollback journal, 2 for write-ahead logging
CORE_TABLES = frozenset({"studies", "trials", "version_info"})  # in every Optuna schema, old and new
SHOWN_TABLES = 8
POSTGRES_READ_ONLY = "-c default_transaction_read_only=on"
_MAKE_ONE = "name a study store with --storage, or run `automl-tl search` to make one"


@dataclass(frozen=True)
class StoreContents:
    """What a database holds, as far as telling an Optuna study store from anything else needs."""

    tables: frozenset[str]
    revision: str | None = None  # the row of ``alembic_version``; None without that table or row
    made_by: str | None = None  # ``version_info.library_version``: the Optuna that made the store


@lru_cache(maxsize=1)
def optuna_revisions() -> tuple[str, tuple[str, ...]]:
    """The schema revision this Optuna writes (its alembic head) and every revision it knows."""
    import alembic.script
    import optuna.storages._rdb as rdb

    scripts = alembic.script.ScriptDirectory(str(Path(rdb.__file__).parent / "alembic"))
    head = scripts.get_current_head()
    assert head is not None, "Optuna ships one alembic head"
    return head, tuple(revision.revision for revision in scripts.walk_revisions())


def _tables_text(tables: frozenset[str]) -> str:
    names = sorted(tables)
    more = f" and {len(names) - SHOWN_TABLES} more" if len(names) > SHOWN_TABLES else ""
    return ", ".join(names[:SHOWN_TABLES]) + more


def problem(contents: StoreContents | None, shown: str, *, for_writing: bool, server: bool = False) -> str | None:
    """Why the database ``shown`` cannot be used, or None when it can. ``contents`` is None for a SQLite
    file of zero bytes. Reading needs a complete store of this Optuna's schema; writing also takes an
    empty database (the search makes the store) and, in a ``server`` database (PostgreSQL, MySQL), other
    applications' tables beside Optuna's."""
    import optuna

    head, known = optuna_revisions()
    tables = contents.tables if contents is not None else frozenset()
    if not tables:
        if for_writing:
            return None
        size = "an empty file (0 bytes)" if contents is None else "an empty database (no tables)"
        return f"{shown} is {size}, not an automl-tl study store, so it holds no study: {_MAKE_ONE}."
    foreign = f"{shown} is a database of another application (tables: {_tables_text(tables)})"
    revision = contents.revision if contents is not None else None
    made_by = contents.made_by if contents is not None else None
    if not CORE_TABLES <= tables:
        if revision is not None and revision not in known:
            return (f"{foreign}, not an automl-tl study store: its alembic_version row {revision!r} is none of "
                    f"Optuna's schema revisions, and Optuna keeps its own schema version in a table of that name, "
                    f"so a study store cannot share this database. Give automl-tl a database of its own: {_MAKE_ONE}.")
        if for_writing and server:  # a SQLite file is one application's; a server database is often shared
            return None
        return f"{foreign}, not an automl-tl study store; {_MAKE_ONE}."
    if for_writing and (made_by is None or revision is None):
        return None  # a store another process is making right now, or one Optuna stamps (or refuses) itself
    if made_by is None:
        return (f"{shown} has Optuna's tables but not their version record: it is a study store that was never "
                f"finished (a search stopped while making it?) and holds no study. Run `automl-tl search` with this "
                f"--storage to finish it, or name another study store with --storage.")
    if revision == head:
        return None
    if revision is None or revision in known:
        return (f"{shown} is an Optuna study store of an older schema (revision {revision or 'before alembic'}, made "
                f"by Optuna {made_by}); this Optuna {optuna.__version__} reads and writes revision {head} and "
                f"automl-tl never changes a store's schema by itself. Back the file or database up, run `optuna "
                f"storage upgrade --storage URL` on it, and run the command again.")
    return (f"{shown} is an Optuna study store of schema revision {revision!r}, which this Optuna "
            f"{optuna.__version__} does not know (its newest is {head}); the store says Optuna {made_by} made it. Use "
            f"that Optuna version (or a newer one) to read it; nothing was changed.")


def check(contents: StoreContents | None, shown: str, *, for_writing: bool, server: bool = False) -> None:
    """``problem`` as a UserError."""
    found = problem(contents, shown, for_writing=for_writing, server=server)
    if found is not None:
        raise UserError(found)


# -- SQLite files: read with the standard library, never written ------------------------------------
def _header(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(100)


def sqlite_uri(path: Path) -> str:
    """A ``file:`` URI that opens ``path`` read-only and leaves no file beside it. A database in
    write-ahead-log mode whose ``-wal`` and ``-shm`` files are gone (no writer has it open) is opened
    ``immutable``: SQLite would otherwise create both files to read it, and leave them."""
    header = _header(path)
    wal = len(header) >= 20 and header[18] == SQLITE_WAL_FORMAT
    sidecars = [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]
    flag = "immutable=1" if wal and not any(p.exists() for p in sidecars) else "mode=ro"
    return f"{path.resolve().as_uri()}?{flag}"


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to SQLite file ``path`` (any thread may use it: SQLAlchemy's pool hands it on)."""
    return sqlite3.connect(sqlite_uri(path), uri=True, check_same_thread=False)


def _single_value(connection: sqlite3.Connection, sql: str) -> str | None:
    row = connection.execute(sql).fetchone()
    return str(row[0]) if row is not None and row[0] is not None else None


def sqlite_contents(path: Path, shown: str) -> StoreContents | None:
    """What SQLite file ``path`` holds (None for zero bytes), read without writing a byte; a clear error
    for a file that is not a SQLite database at all."""
    header = _header(path)
    if not header:
        return None
    not_sqlite = UserError(f"{shown} is not a SQLite database (it does not begin with SQLite's header), so it is "
                           f"not an automl-tl study store; {_MAKE_ONE}. Nothing was written to it.")
    if not header.startswith(SQLITE_HEADER):
        raise not_sqlite
    connection = connect_read_only(path)
    try:
        tables = frozenset(row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        revision = _single_value(connection, "SELECT version_num FROM alembic_version") \
            if "alembic_version" in tables else None
        made_by = _single_value(connection, "SELECT library_version FROM version_info") \
            if "version_info" in tables else None
    except sqlite3.DatabaseError as exc:  # a damaged file behind a good header, or an unfinished write
        if "readonly" in str(exc) and Path(f"{path}-journal").exists():
            raise UserError(f"{shown} has an unfinished write in {shown}-journal (a process writing it was "
                            f"stopped), which SQLite rolls back before anyone reads the file, and a command that only "
                            f"reads never writes. Run `automl-tl search` on the study once more (it rolls the write back "
                            f"and resumes), or `sqlite3 {shown} 'PRAGMA quick_check'`, then run this command again.") \
                from None
        raise UserError(f"{shown} cannot be read as a SQLite database ({exc}), so it is not a study store automl-tl "
                        f"can use; {_MAKE_ONE}. Nothing was written to it.") from None
    finally:
        connection.close()
    return StoreContents(tables, revision, made_by)


# -- any database SQLAlchemy reaches -----------------------------------------------------------------
def server_contents(bind: Any) -> StoreContents:
    """What the database behind SQLAlchemy engine ``bind`` holds, read with SELECTs only."""
    import sqlalchemy

    tables = frozenset(sqlalchemy.inspect(bind).get_table_names())
    with bind.connect() as connection:
        def value(sql: str) -> str | None:
            row = connection.execute(sqlalchemy.text(sql)).fetchone()
            return str(row[0]) if row is not None and row[0] is not None else None

        revision = value("SELECT version_num FROM alembic_version") if "alembic_version" in tables else None
        made_by = value("SELECT library_version FROM version_info") if "version_info" in tables else None
    return StoreContents(tables, revision, made_by)


def read_only_engine_kwargs(url: str) -> dict[str, Any]:
    """Engine arguments that make every transaction on ``url`` read-only where the database offers it
    (PostgreSQL's ``default_transaction_read_only``); the checks before opening keep the rest read-only."""
    import sqlalchemy

    parsed = sqlalchemy.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return {}
    given = parsed.query.get("options")
    options = " ".join([*([given] if isinstance(given, str) else list(given or ())), POSTGRES_READ_ONLY])
    return {"connect_args": {"options": options}}


def check_server_database(url: str, shown: str, *, for_writing: bool) -> None:
    """Read the database at ``url`` (not SQLite) and refuse it when it is not a store this Optuna can use."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **(read_only_engine_kwargs(url) if not for_writing else {}))
    try:
        check(server_contents(engine), shown, for_writing=for_writing, server=True)
    finally:
        engine.dispose()


def open_read_only(url: str, database: Path | None, shown: str) -> Any:
    """An Optuna storage on the existing study store at ``url`` that cannot write: Optuna's table
    creation and version stamping are skipped (the store was checked to need neither) and the connection
    itself is read-only. ``database`` is the SQLite file of a ``sqlite:`` URL."""
    import optuna
    import sqlalchemy

    if url.startswith("sqlite:") and database is None:  # in memory: a new, empty database every time
        check(StoreContents(frozenset()), shown, for_writing=False)
    if database is not None:
        check(sqlite_contents(database, shown), shown, for_writing=False)
        creator: Callable[[], sqlite3.Connection] = lambda: connect_read_only(database)  # noqa: E731
        storage_url, kwargs = "sqlite://", {"creator": creator, "poolclass": sqlalchemy.pool.QueuePool}
    else:
        check_server_database(url, shown, for_writing=False)
        storage_url, kwargs = url, read_only_engine_kwargs(url)
    storage = optuna.storages.RDBStorage(storage_url, engine_kwargs=kwargs, skip_table_creation=True,
                                         skip_compatibility_check=True)
    return optuna.storages.get_storage(storage)


def roll_back_unfinished_write(path: Path) -> None:
    """A command that writes reads SQLite file ``path`` once through a writable connection when a
    ``-journal`` is beside it: SQLite rolls back a write left unfinished by a stopped process (a hot
    journal), as any program writing the file would, so the read-only check that follows can read it."""
    if not Path(f"{path}-journal").exists():
        return
    connection = sqlite3.connect(path)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        pass  # not a database, or damaged: the check that follows says which
    finally:
        connection.close()


def check_before_writing(url: str, database: Path | None, shown: str) -> None:
    """Before Optuna makes or opens a study store to write: a database that is there must be empty or a
    store of this Optuna's schema, never a file of another application (whose tables Optuna would join
    with its own) nor a store of another schema (which Optuna would change before refusing it)."""
    if database is not None:
        if database.is_file():
            roll_back_unfinished_write(database)
            check(sqlite_contents(database, shown), shown, for_writing=True)
    elif not url.startswith("sqlite:"):
        check_server_database(url, shown, for_writing=True)


@contextmanager
def reading_store(shown: str) -> Iterator[None]:
    """Around reading a study store that passed the checks: content Optuna cannot decode (a damaged file:
    a value that is not JSON, a distribution without its type, a malformed page) or a database that stops
    answering becomes one paragraph naming the store, instead of a traceback from deep inside Optuna."""
    import optuna
    import sqlalchemy.exc

    try:
        yield
    except (ValueError, KeyError, TypeError, sqlalchemy.exc.SQLAlchemyError,
            optuna.exceptions.StorageInternalError) as exc:
        cause = exc.__cause__ or exc
        lines = str(cause).strip().splitlines()
        detail = f"{type(cause).__name__}: {lines[0][:200]}" if lines else type(cause).__name__
        raise UserError(f"Cannot read the study store {shown} ({detail}): its content is damaged, or the database "
                        f"stopped answering. Nothing was written to it. Check that the database is reachable, or "
                        f"restore the store from a backup.") from None
