"""An existing study's user attributes, read without creating anything, in today's record format."""

from __future__ import annotations

import logging
from typing import Any

import optuna

from automl_tl.storage.urls import is_sqlite, open_storage, sqlite_file
from automl_tl.study_record import EPOCHS_ATTR, IMAGE_SIZE_ATTR, migrated, study_rule
from automl_tl.types import ResizeRule


def quiet_optuna() -> None:
    """Optuna's and alembic's own log lines off: automl-tl says what happened itself."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def existing_study_attrs(storage_url: str, study_name: str) -> dict[str, Any] | None:
    """The user attributes of an existing study, read through ``migrated`` (a newer format is refused);
    None when there is no such study yet (nothing is created)."""
    quiet_optuna()
    if is_sqlite(storage_url):
        path = sqlite_file(storage_url)
        if path is None or not path.is_file():
            return None
    storage = open_storage(storage_url)
    names = {s.study_name for s in optuna.get_all_study_summaries(storage=storage, include_best_trial=False)}
    if study_name not in names:
        return None
    return migrated(study_name, optuna.load_study(study_name=study_name, storage=storage).user_attrs)


def recorded_input(storage_url: str, study_name: str) -> tuple[int, ResizeRule, int] | None:
    """The size, rule and epochs an existing study trains with, so that ``auto`` resumes it as it
    began; None when there is no such study yet (nothing is created)."""
    attrs = existing_study_attrs(storage_url, study_name)
    if attrs is None or IMAGE_SIZE_ATTR not in attrs or EPOCHS_ATTR not in attrs:
        return None
    return int(attrs[IMAGE_SIZE_ATTR]), study_rule(attrs), int(attrs[EPOCHS_ATTR])
