"""Workers: processes that join an existing study and take its trials until the budget is met.

``automl-tl worker`` runs one; ``automl-tl search --workers N`` prepares the study once and then
starts N of them on this machine. Workers on other machines run the same ``worker`` command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from automl_tl.distributed.loop import make_admission, search_deadline, work_on_study
from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.runtime.deadline import running_under
from automl_tl.storage.urls import STORAGE_ENV, is_postgres, redact
from automl_tl.study_record import FINGERPRINT_ATTR, StudyData, StudySettings, migrated, stored_settings
from automl_tl.tuning.budget import finished_count, study_budget
from automl_tl.tuning.fingerprint import make_fingerprint
from automl_tl.tuning.lifecycle import open_study
from automl_tl.tuning.search_costs import SearchCosts
from automl_tl.tuning.settings import SearchResult, SearchSettings
from automl_tl.tuning.space import search_space, space_json
from automl_tl.types import ImageTable


@dataclass
class StoredStudy:
    """What a worker reads from the study before it loads any data."""

    name: str
    url: str
    settings: StudySettings
    data_location: str
    artifacts: str
    attrs: dict[str, Any]  # all of the study's user attributes, in today's format (``migrated``)


def read_stored_study(name: str, url: str) -> StoredStudy:
    """The settings ``search`` recorded when it created the study; a clear error if there is none."""
    from automl_tl.storage.urls import is_sqlite, open_storage, sqlite_file

    database = sqlite_file(url) if is_sqlite(url) else None
    missing_file = database is not None and not database.is_file()
    try:
        if missing_file:  # opening it would leave an empty database behind
            raise KeyError(name)
        storage = open_storage(url)
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        raise UserError(
            f"No study named {name!r} in {redact(url)}. Create it once, before starting workers, with: "
            f"automl-tl search DATA --study {name} --storage URL --trials N --workers 0"
        ) from None
    attrs = migrated(name, storage.get_study_user_attrs(study_id))  # a newer format is refused here
    settings = stored_settings(attrs)
    if settings is None or FINGERPRINT_ATTR not in attrs:
        raise UserError(
            f"Study {name!r} in {redact(url)} was not prepared by `automl-tl search`, so a worker does not know "
            f"how to run its trials. Prepare it with: automl-tl search DATA --study {name} --storage URL --workers 0"
        )
    data = StudyData.from_attrs(attrs)
    return StoredStudy(name=name, url=url, settings=settings, data_location=data.data_location if data else "",
                       artifacts=data.artifacts if data else "", attrs=attrs)


def check_workers(workers: int, url: str) -> None:
    """``search --workers``: 0 prepares the study only; more than one needs PostgreSQL."""
    if workers < 0:
        raise UserError(f"--workers {workers}: give 0 (prepare the study only) or more workers.")
    if workers > 1 and not is_postgres(url):
        raise UserError(
            f"--workers {workers}: several workers need a shared database, and {redact(url)} is not one. SQLite "
            f"serves one process at a time. Put the study in PostgreSQL with --storage postgresql://USER@HOST/DB "
            f"(see 'Many machines' in docs/user-guide/studies.md)."
        )


def worker_settings(stored: StoredStudy, plugins: Plugins, data_location: str, artifacts: Path,
                    timeout: float | None = None, show_bars: bool = True,
                    artifacts_remote: str | None = None) -> SearchSettings:
    """Settings for a worker: everything from the study, except where its data and artifacts live."""
    missing = [name for name in stored.settings.backbones if name not in plugins.backbones.names(None)]
    if missing:
        raise UserError(
            f"This worker cannot run study {stored.name!r}: backbone(s) {', '.join(missing)} are not installed here. "
            f"Install the same plugins as the machine that created the study (`automl-tl plugins` lists them)."
        )
    return SearchSettings.from_stored(stored.settings, study_name=stored.name, storage_url=stored.url,
                                      artifacts=artifacts, data_location=data_location, timeout=timeout,
                                      show_bars=show_bars, artifacts_remote=artifacts_remote)


def run_worker(settings: SearchSettings, plugins: Plugins, table: ImageTable, console: Console) -> SearchResult:
    """Join the study, refusing if this worker's data or settings give a different fingerprint."""
    space = search_space(settings.backbones, settings.epochs, settings.truncation)
    fingerprint = make_fingerprint(table.manifest_hash, space_json(space), settings.epochs, settings.image_size,
                                   settings.resize.token(), settings.cv_folds)
    admission = make_admission(settings)
    deadline = search_deadline(settings)
    try:
        with running_under(deadline):
            costs = SearchCosts(settings, plugins, table, deadline)  # this worker's cost model, and its sampler's
            study = open_study(settings, fingerprint, create=False, cost=costs.sampling(space))
            settings.trials = study_budget(study, 0)
            return work_on_study(study, settings, plugins, table, space, console, admission, costs=costs)
    finally:
        admission.close()


def cli_command() -> list[str]:
    """How to start automl-tl again with this interpreter, without the working directory on sys.path
    (``-P``), so a worker never imports a module or plugin from the folder it was started in."""
    return [sys.executable, "-P", "-m", "automl_tl"]


def worker_command(name: str, data_location: str, plugin_files: list[str], timeout: float | None = None) -> list[str]:
    """The command line of one local worker. The storage URL travels in the environment, not argv,
    so its password never shows in the process list; artifacts go where the study records them.
    ``timeout``: the seconds left of the ``search`` command's own --timeout."""
    command = [*cli_command(), "worker", "--study", name, "--data", data_location, "--lines"]
    for path in plugin_files:
        command += ["--plugin", path]
    if timeout is not None:
        command += ["--timeout", f"{max(timeout, 0.001):.3f}"]
    return command


def run_local_workers(count: int, study: optuna.Study, url: str, data_location: str, plugin_files: list[str],
                      console: Console, timeout: float | None = None) -> list[int]:
    """Start ``count`` workers on this machine, show the study's progress, and return their exit codes.
    ``timeout``: the seconds each worker may run (what is left of ``search --timeout``).

    Ctrl-C or SIGTERM is passed on to every worker, which hands its running trial back to the queue."""
    env = {**os.environ, STORAGE_ENV: url}
    command = worker_command(study.study_name, data_location, plugin_files, timeout)
    processes = [subprocess.Popen(command, env=env) for _ in range(count)]
    budget = study_budget(study, 0)
    progress = Progress(TextColumn("[bold]study"), BarColumn(), MofNCompleteColumn(),
                        TextColumn(f"{count} workers"), TimeElapsedColumn(), console=console)
    try:
        with progress:
            task = progress.add_task("trials", total=budget, completed=finished_count(study))
            while any(process.poll() is None for process in processes):
                time.sleep(1.0)
                try:
                    progress.update(task, completed=finished_count(study))
                except Exception:  # the database is away; the workers report it themselves
                    pass
    except KeyboardInterrupt:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait()
        raise
    return [process.returncode for process in processes]
