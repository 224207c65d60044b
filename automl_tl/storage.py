"""Where studies live: SQLite files in the studies folder by default, any Optuna storage URL otherwise."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import UserError

STUDIES_ENV = "AUTOML_TL_STUDIES"
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
    """The explicit URL, or ``sqlite:///studies/<name>.db``."""
    if storage:
        return storage
    return f"sqlite:///{sqlite_path(name)}"


def artifacts_dir(name: str, artifacts: str | None = None) -> Path:
    """Artifacts of study ``name``: ``--artifacts DIR`` or ``studies/<name>/``."""
    base = Path(artifacts).expanduser().resolve() if artifacts else studies_dir()
    return base / name


def redact(url: str) -> str:
    """A storage URL with its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable storage URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``, with a clear error when it cannot be reached."""
    import optuna

    if is_sqlite(url):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.get_storage(url)
    except Exception as exc:  # connection refused, bad driver, malformed URL ...
        message = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise UserError(
            f"Cannot open the study storage {redact(url)}: {message}. Check the --storage URL and "
            f"that the database is running and reachable."
        ) from None
