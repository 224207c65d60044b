"""What every command shares: the consoles, loading the plugins, finding the data and opening a study."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.runtime.shown_text import console_text
from automl_tl.types import DataSplits, ImageTable, ResizeRule

# Logs and pipes get a wide console so tables stay readable; a terminal keeps its own width.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def command_plugins(args: argparse.Namespace) -> Plugins:
    """The installed plugins, and the plugin files this command names with --plugin."""
    from automl_tl.plugin.manager import load_plugins

    return load_plugins(plugin_files=getattr(args, "plugin", None) or [])


def announce_sample(data: str | None, command: str = "search") -> None:
    """Without DATA, one line on stderr naming the bundled sample the command will read (a search of the
    sample by mistake is minutes lost, and its results are not the user's). Writes nothing."""
    if not data:
        from automl_tl.data.sample import default_sample_dir

        err_console.print(f"[yellow]note[/] No DATA given: {sample_named(command, default_sample_dir())}", highlight=False)


def data_location(data: str | None, command: str = "search", announced: bool = False) -> str:
    """The data a command reads: the folder or CSV given, or the bundled sample (written on first use), said
    first by ``announce_sample`` unless ``announced``."""
    if data:
        return data
    from automl_tl.data.sample import ensure_sample

    if not announced:
        announce_sample(data, command)
    return str(ensure_sample())


def sample_named(command: str, sample: Path) -> str:
    """The line that names the bundled sample when a command runs without DATA."""
    doing = "searching" if command == "search" else "reading"
    return (f"{doing} the bundled sample at {console_text(str(sample))} (give a folder of your own: "
            f"automl-tl {command} {'MODEL_DIR ' if command == 'evaluate' else ''}DATA).")


def read_images(splits: DataSplits, image_size: int, rule: ResizeRule, *, max_pixels: int | None = None,
                show_progress: bool = True, skipped_note: str = "") -> ImageTable:
    """Decode the splits' images at the study's size, warning once about the images that were skipped."""
    from automl_tl.data.images import DEFAULT_MAX_PIXELS
    from automl_tl.data.loader import describe_skipped, load_table

    table = load_table(splits, image_size, max_pixels=max_pixels or DEFAULT_MAX_PIXELS, show_progress=show_progress,
                       rule=rule)
    if table.skipped:
        note = f" {skipped_note}" if skipped_note else ""
        err_console.print(f"[yellow]warning[/] {console_text(describe_skipped(table.skipped))}{console_text(note)}", highlight=False)
    return table


def load_study(name: str, storage: str | None) -> Any:
    """An existing study, or a clear error; nothing is created or written (no database file, folder, table or
    row: the store is opened read-only, see storage/study_store.py)."""
    import optuna

    from automl_tl.storage.stored_attrs import quiet_optuna
    from automl_tl.storage.study_store import reading_store
    from automl_tl.storage.urls import (
        check_study_name,
        explicit_storage,
        missing_database,
        open_storage,
        redact,
        sqlite_path,
        storage_url,
        store_name,
    )
    from automl_tl.study_record import migrated

    quiet_optuna()
    check_study_name(name)
    if explicit_storage(storage) is None and not sqlite_path(name).is_file():
        raise UserError(f"No study named {name!r}: {sqlite_path(name)} does not exist. `automl-tl studies` lists them.")
    url = storage_url(name, storage)
    missing = missing_database(url)  # opening it would create the file and its folders
    if missing is not None:
        raise missing
    store = open_storage(url, read_only=True)
    with reading_store(store_name(url)):
        try:
            study = optuna.load_study(study_name=name, storage=store)
        except KeyError:
            raise UserError(f"No study named {name!r} in {redact(url)}. `automl-tl studies` lists them.") from None
        study.get_trials(deepcopy=False)  # every finished trial read (and cached) here, where damage is named
        migrated(name, study.user_attrs)  # read for the same reason; a study of a newer format is refused here
    return study


def resolved(path: str) -> Path:
    return Path(path).expanduser().resolve()
