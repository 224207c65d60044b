"""Where studies live: SQLite files in the studies folder by default, any Optuna storage URL otherwise."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import UserError

STUDIES_ENV = "AUTOML_TL_STUDIES"
STORAGE_ENV = "AUTOML_TL_STORAGE"  # a URL here stays out of the process list, unlike --storage
DEFAULT_HEARTBEAT_S = 10
GRACE_HEARTBEATS = 3  # a trial is stale after this many missed heartbeats
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def studies_dir() -> Path:
    """``$AUTOML_TL_STUDIES`` or ``./studies``."""
    return Path(os.environ.get(STUDIES_ENV, "studies")).expanduser().resolve()


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
    chosen = storage or os.environ.get(STORAGE_ENV)
    if chosen:
        return chosen
    return f"sqlite:///{sqlite_path(name)}"


def explicit_storage(storage: str | None) -> str | None:
    """The URL the user named with ``--storage`` or ``$AUTOML_TL_STORAGE``, if any."""
    return storage or os.environ.get(STORAGE_ENV) or None


def artifacts_dir(name: str, artifacts: str | None = None) -> Path:
    """Artifacts of study ``name``: ``--artifacts DIR`` or ``studies/<name>/``."""
    base = Path(artifacts).expanduser().resolve() if artifacts else studies_dir()
    return base / name


# Parsed the way SQLAlchemy parses URLs, so that a password with '#', '?' or '/' in it is still found.
_USERINFO = re.compile(r"^[\w+.-]+://(?:[^:/@]*)(?::(?P<password>[^@]*))?@")


def _secrets(url: str) -> list[str]:
    """The password of a URL, raw and percent-decoded, from its user part or a ``password=`` query."""
    found = []
    match = _USERINFO.match(url)
    if match and match.group("password"):
        found.append(match.group("password"))
    try:
        query = urlsplit(url).query
    except ValueError:
        query = ""
    found += [value for key, value in parse_qsl(query, keep_blank_values=False) if key.lower() == "password"]
    # ... and as typed (parse_qsl decodes '+' and %xx, and the URL shows the raw form)
    found += [pair.split("=", 1)[1] for pair in query.split("&") if pair.lower().startswith("password=")]
    return [s for secret in found for s in {secret, unquote(secret)} if s]


def scrub(text: str, url: str) -> str:
    """``text`` with every appearance of ``url``'s password replaced by ``***``."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def artifact_places(name: str, option: str | None) -> tuple[Path, str | None]:
    """Where study ``name`` keeps trial artifacts for ``--artifacts option``: a local folder, and the
    S3 URL they are mirrored to when the option is ``s3://bucket/prefix`` (see artifact_mirror.py)."""
    from .artifact_mirror import is_s3

    if option and is_s3(option):
        return studies_dir() / name, f"{option.rstrip('/')}/{name}"
    return artifacts_dir(name, option), None


def recorded_artifact_places(name: str, recorded: str | None) -> tuple[Path, str | None]:
    """The same for the location a study recorded (which already ends with the study's name)."""
    from .artifact_mirror import is_s3

    if not recorded:
        return artifacts_dir(name), None
    if is_s3(recorded):
        return studies_dir() / name, recorded
    return Path(recorded), None


def redact(url: str) -> str:
    """A storage URL with its password replaced by ``***``."""
    try:
        urlsplit(url)
    except ValueError:
        return "<unparsable storage URL>"
    return scrub(url, url)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgresql+", "postgres:"))


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    path = url.split("sqlite:///", 1)[-1]
    return None if not path or path == ":memory:" else Path(path)


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``, with a clear error when it cannot be reached."""
    import optuna

    if is_sqlite(url) and sqlite_file(url) is not None:
        sqlite_file(url).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.get_storage(url)
    except ModuleNotFoundError as exc:
        raise UserError(
            f"Cannot open the study storage {redact(url)}: its database driver {exc.name!r} is not installed. "
            f"For PostgreSQL install it with: pip install 'automl-tl[postgres]'."
        ) from None
    except Exception as exc:  # connection refused, malformed URL ...
        message = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, url)
        raise UserError(
            f"Cannot open the study storage {redact(url)}: {message}. Check the --storage URL and "
            f"that the database is running and reachable."
        ) from None


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
        detail = scrub(str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__, url)
        raise UserError(
            f"Lost the study database {redact(url)}: {detail}. Trials that finished are stored in it, and a trial "
            f"that was running is queued again once the database is back. When it is, run the same command again "
            f"to finish the study."
        ) from None
