"""Where studies live: SQLite files in the studies folder by default, any Optuna storage URL otherwise."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from automl_tl.errors import UserError
from automl_tl.runtime.env_vars import STORAGE, STUDIES

STUDIES_ENV = STUDIES.name
STORAGE_ENV = STORAGE.name  # a URL here stays out of the process list, unlike --storage
DEFAULT_HEARTBEAT_S = 10
GRACE_HEARTBEATS = 3  # a trial is stale after this many missed heartbeats
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def studies_dir() -> Path:
    """``$AUTOML_TL_STUDIES`` or ``./studies``."""
    return Path(STUDIES.value("studies")).expanduser().resolve()


def check_study_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"--study {name!r}: use letters, digits, '.', '_' and '-' only (at most 100 characters), "
            f"starting with a letter or digit."
        )
    return name


def study_name_for(data_location: str) -> str:
    """A default study name from the data folder or file name."""
    stem = Path(data_location.rstrip("/\\")).stem or "study"
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "study"
    return cleaned[:100]


def sqlite_path(name: str) -> Path:
    return studies_dir() / f"{name}.db"


def storage_url(name: str, storage: str | None) -> str:
    """``--storage``, else ``$AUTOML_TL_STORAGE``, else ``sqlite:///studies/<name>.db``."""
    chosen = explicit_storage(storage)
    if chosen:
        return chosen
    return f"sqlite:///{sqlite_path(name)}"


def explicit_storage(storage: str | None) -> str | None:
    """The URL the user named with ``--storage`` or ``$AUTOML_TL_STORAGE``, if any."""
    chosen = storage or STORAGE.given()
    if chosen is not None and "\x00" in chosen:
        raise UserError(f"--storage {redact(chosen.replace(chr(0), '?'))}: the URL holds a NUL byte, which no "
                        f"database name or path can. Check how the URL was typed or generated.")
    return chosen


def artifacts_dir(name: str, artifacts: str | None = None) -> Path:
    """Artifacts of study ``name``: ``--artifacts DIR`` or ``studies/<name>/``."""
    base = Path(artifacts).expanduser().resolve() if artifacts else studies_dir()
    return base / name


# Credentials in a URL, found however malformed it is ("postgresql:/u:pw@host", "postgresql//u:pw@host",
# a password with '@', ':', '#', '?' or '/' in it): after the scheme and the ':' and '/' that follow it,
# everything up to the LAST '@' is the user part, its user name up to the first ':' and the password after
# that. Parsers disagree: SQLAlchemy ends the password at the first '@' and shows the rest as the host.
_SCHEME = re.compile(r"[A-Za-z][\w+.-]*(?P<separator>:?/*)")
_QUERY_PASSWORD = re.compile(r"(?i)\bpassword=(?P<value>[^&]*)")
_PIECES = re.compile(r"[@:]")


def _credential_spans(url: str) -> list[tuple[int, int]]:
    """Where ``url`` holds a password, as sorted, disjoint (start, end): its user part and every
    ``password=`` value."""
    spans = [(found.start("value"), found.end("value")) for found in _QUERY_PASSWORD.finditer(url)]
    at = url.rfind("@")
    if at >= 0:
        scheme = _SCHEME.match(url)
        start = scheme.end() if scheme and scheme.group("separator") else 0
        colon = url.find(":", start, at)
        if colon >= 0:
            spans.append((colon + 1, at))
        elif scheme and scheme.group("separator") == ":":  # "u:pw@host": that "u" may be the user, not a scheme
            spans.append((start, at))
    else:  # no '@' at all: "user:password" typed without it, where a host:port would have a number
        scheme = _SCHEME.match(url)
        start = scheme.end() if scheme and scheme.group("separator") else len(url) - len(url.lstrip(":/"))
        end = min([i for i in (url.find(c, start) for c in "/?#") if i >= 0] or [len(url)])
        netloc = url[start:end]
        first, last = netloc.find(":"), netloc.rfind(":")
        if scheme and scheme.group("separator") == ":":  # "u:pw..." with no '//': the "u" is a user, not a scheme
            spans.append((start, end))
        elif netloc.startswith("[") or first < 0:  # "[::1]:5432" is an address and a port
            pass
        elif first < last:  # "u:pw<host>:5432"
            spans.append((start + first + 1, start + last))
        elif not netloc[last + 1:].isdigit():  # "u:pw<host>"; a port would be a number
            spans.append((start + first + 1, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(span for span in spans if span[0] < span[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _secrets(url: str) -> list[str]:
    """Every form of ``url``'s passwords that a message may show: as typed, percent-decoded, and each
    piece of them between '@' and ':' longer than one character, since a driver that took only part of
    a password for the password shows the rest as the host or the port."""
    found: set[str] = set()
    for start, end in _credential_spans(url):
        raw = url[start:end]
        for form in {raw, unquote(raw), unquote_plus(raw)}:
            found.add(form)
            found.update(piece for piece in _PIECES.split(form) if len(piece) > 1)
    return [secret for secret in found if secret]


def scrub(text: str, url: str) -> str:
    """``text`` with every appearance of ``url``'s password, or of a piece of it, replaced by ``***``."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def artifact_places(name: str, option: str | None) -> tuple[Path, str | None]:
    """Where study ``name`` keeps trial artifacts for ``--artifacts option``: a local folder, and the
    S3 URL they are mirrored to when the option is ``s3://bucket/prefix`` (see artifact_mirror.py)."""
    from automl_tl.storage.mirror import is_s3

    if option and is_s3(option):
        return studies_dir() / name, f"{option.rstrip('/')}/{name}"
    return artifacts_dir(name, option), None


def recorded_artifact_places(name: str, recorded: str | None) -> tuple[Path, str | None]:
    """The same for the location a study recorded (which already ends with the study's name)."""
    from automl_tl.storage.mirror import is_s3

    if not recorded:
        return artifacts_dir(name), None
    if is_s3(recorded):
        return studies_dir() / name, recorded
    return Path(recorded), None


def redact(url: str) -> str:
    """A storage URL, parsed or not, with every credential in it replaced by ``***`` (see _credential_spans)."""
    shown, kept_from = [], 0
    for start, end in _credential_spans(url):
        shown += [url[kept_from:start], "***"]
        kept_from = end
    return "".join(shown) + url[kept_from:]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgresql+", "postgres:"))


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    path = url.split("sqlite:///", 1)[-1]
    return None if not path or path == ":memory:" else Path(path)


def store_name(url: str) -> str:
    """How messages name the study store at ``url``: a SQLite file's full path, or the URL without its password."""
    database = sqlite_file(url) if is_sqlite(url) else None
    return str(Path(database).resolve()) if database is not None else redact(url)


def open_storage(url: str, *, read_only: bool = False) -> Any:
    """An Optuna storage for ``url``, with a clear error when it cannot be reached or is not a study store
    (see study_store.py). ``read_only``, for commands that only read: the store must exist, and nothing is
    created, migrated or written (no file, folder, table or row). Otherwise a missing database is made, and
    one that is there must be empty or a study store."""
    import optuna

    from automl_tl.storage.study_store import check_before_writing, open_read_only

    database = sqlite_file(url) if is_sqlite(url) else None
    shown = store_name(url)
    try:
        if read_only:
            return open_read_only(url, database, shown)
        if database is not None:
            make_database_folder(database)
        check_before_writing(url, database, shown)
        return optuna.storages.get_storage(url)
    except UserError:
        raise
    except ModuleNotFoundError as exc:
        raise UserError(
            f"Cannot open the study storage {redact(url)}: its database driver {exc.name!r} is not installed. "
            f"For PostgreSQL install it with: pip install 'automl-tl[postgres]'."
        ) from None
    except Exception as exc:  # connection refused, malformed URL ...
        if _is_read_only_sqlite(url, exc):
            raise read_only_database(url) from None
        raise cannot_open(url, exc) from None


def _is_read_only_sqlite(url: str, exc: BaseException) -> bool:
    """SQLite's "attempt to write a readonly database", however the driver wrapped it."""
    return is_sqlite(url) and "readonly database" in str(exc)


def cannot_open(url: str, exc: BaseException) -> UserError:
    """The error for a storage URL that does not open, without its password (also from a driver)."""
    message = scrub(str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
    return UserError(
        f"Cannot open the study storage {redact(url)}: {message}. Check the --storage URL and "
        f"that the database is running and reachable."
    )


def is_database_error(exc: BaseException) -> bool:
    """An error of the database or the connection to it, as opposed to a bug or bad input."""
    import optuna
    import sqlalchemy.exc

    return isinstance(exc, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError))


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn a lost database into one clear paragraph: what happened, what is safe, what to do."""
    try:
        yield
    except Exception as exc:
        if not is_database_error(exc):
            raise
        cause = exc.__cause__ or exc
        if _is_read_only_sqlite(url, cause):
            raise read_only_database(url) from None
        detail = scrub(str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__, url)
        raise UserError(
            f"Lost the study database {redact(url)}: {detail}. Trials that finished are stored in it, and a trial "
            f"that was running is queued again once the database is back. When it is, run the same command again "
            f"to finish the study."
        ) from None


# -- the place of a SQLite study: checked before anything is written there --------------------
_PLACE_HINT = ("Set AUTOML_TL_STUDIES to a folder you can write to, or name another database file with "
               "--storage sqlite:////ABSOLUTE/PATH/NAME.db")


def read_only_database(url: str) -> UserError:
    """The error for a SQLite study file that cannot be written."""
    path = sqlite_file(url)
    where = Path(path).resolve() if path is not None else redact(url)
    return UserError(
        f"The study database {where} is read-only, so automl-tl cannot record trials in it. Make the file and "
        f"the folder it is in writable (e.g. chmod u+w), or copy the file to a writable place and pass "
        f"--storage sqlite:////PATH/TO/COPY.db. Trials already stored in it are untouched."
    )


def database_place_error(path: Path, exc: OSError) -> UserError:
    """The error for a SQLite study (or its lock file) that cannot be created at ``path``."""
    culprit = exc.filename or path
    return UserError(
        f"Cannot create the study database {Path(path).resolve()}: {exc.strerror or exc} ({culprit}). "
        f"{_PLACE_HINT}."
    )


def make_database_folder(path: Path) -> None:
    """The folder of SQLite file ``path``, made if missing; a clear error where it cannot be."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise database_place_error(path, exc) from None


def missing_database(url: str) -> UserError | None:
    """For a read-only command: the error when ``url`` names a SQLite file that is not there (opening it
    would create it and its folders), else None."""
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is None or path.is_file():
        return None
    what = "is a folder, not a database file" if path.is_dir() else "does not exist"
    return UserError(
        f"No such study database: {Path(path).resolve()} (from {redact(url)}) {what}. Check the path in "
        f"--storage or AUTOML_TL_STORAGE (sqlite:///relative/path.db is relative to the current folder, "
        f"sqlite:////absolute/path.db is absolute). `automl-tl studies` lists the studies in {studies_dir()}."
    )


def check_database_place(url: str) -> None:
    """Before a search or a worker writes a SQLite study: the file, if it is there, must be a regular file
    that can be written, and its folder (or the nearest existing folder above it) must be a writable folder.
    Creates nothing. (As root, only a read-only file system fails here; the real writes are checked too.)"""
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is None:
        return
    path = Path(path)
    if path.exists():
        if not path.is_file():
            raise UserError(f"The study database {path.resolve()} is a folder, not a file. {_PLACE_HINT}.")
        if not os.access(path, os.W_OK):
            raise read_only_database(url)
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            break
    else:
        return
    if not folder.is_dir():
        raise UserError(
            f"Cannot create the study database {path.resolve()}: {folder.resolve()} is a file, not a folder. "
            f"{_PLACE_HINT}."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        if folder == path.parent and path.is_file():
            raise read_only_database(url)
        raise UserError(
            f"Cannot create the study database {path.resolve()}: the folder {folder.resolve()} is not writable. "
            f"{_PLACE_HINT}."
        )
