"""The loop every search process runs: take a trial slot, run the trial, until the study's budget is met.

A single-process search and each of many workers on one PostgreSQL study run the same loop; only
how slots are admitted differs (see admission.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.distributed.admission import Heartbeat, PostgresAdmission, SingleProcessAdmission, SqliteAdmission, wait_times
from automl_tl.plugin.manager import Plugins
from automl_tl.runtime.deadline import Deadline, active, running_under
from automl_tl.runtime.interrupts import StoppedTrial, raise_if_interrupted, storage_write
from automl_tl.runtime.time_ledger import STUDY_WRITES, charged, charged_trial
from automl_tl.storage.artifacts import claim_folder, study_folder, study_key
from automl_tl.storage.urls import GRACE_HEARTBEATS, is_postgres, is_sqlite, sqlite_file
from automl_tl.study_record import Failure
from automl_tl.tuning.budget import finished_count, study_budget
from automl_tl.tuning.lifecycle import fail_orphaned_trials, prepare_study
from automl_tl.tuning.progress import SearchProgress
from automl_tl.tuning.retries import MAX_RETRIES
from automl_tl.tuning.scoring import score_legend
from automl_tl.tuning.search_costs import SearchCosts
from automl_tl.tuning.settings import SearchResult, SearchSettings
from automl_tl.tuning.space import search_space
from automl_tl.tuning.trial_runner import INTERRUPTED, TrialRunner
from automl_tl.types import ImageTable

MAX_NOT_STARTED = 3  # trials in a row too big for the time left, however shrunk, before the search ends


def make_admission(settings: SearchSettings) -> SingleProcessAdmission:
    """How this process takes trial slots (see admission.py). Only PostgreSQL is shared by workers."""
    if is_postgres(settings.storage_url):
        return PostgresAdmission(settings.storage_url, settings.study_name)
    path = sqlite_file(settings.storage_url) if is_sqlite(settings.storage_url) else None
    return SqliteAdmission(path) if path is not None else SingleProcessAdmission()


def search_deadline(settings: SearchSettings) -> Deadline | None:
    """The deadline a search runs under: the command's (``running_under``, made from --timeout at its start),
    else ``settings.timeout`` from now; None without either."""
    deadline = active()
    if deadline is None and settings.timeout:
        deadline = Deadline.after(settings.timeout)
    return deadline


def run_search(settings: SearchSettings, plugins: Plugins, table: ImageTable, console: Console,
               on_ready: Callable[[optuna.Study, int], None] | None = None) -> SearchResult:
    """Continue (or start) the study until it has ``settings.trials`` finished trials (None: until the
    deadline), or until the deadline. A deadline that passes while the study is prepared (smart start's
    profiling pass) raises ``DeadlineReached``."""
    deadline = search_deadline(settings)
    admission = make_admission(settings)  # first: a second process on a SQLite study is refused before any write
    try:
        with running_under(deadline):
            costs = SearchCosts(settings, plugins, table, deadline)
            sampling = costs.sampling(search_space(settings.backbones, settings.epochs, settings.truncation))
            with charged(STUDY_WRITES):
                study, space = prepare_study(settings, plugins, table, console, cost=sampling)
            return work_on_study(study, settings, plugins, table, space, console, admission, on_ready, costs=costs)
    finally:
        admission.close()


def orphans_note(orphans: list[Failure]) -> str:
    """What the run says of the trials a killed process left running, counted from each ``Failure.requeued``."""
    requeued = sum(failure.requeued for failure in orphans)
    given_up = f"; {len(orphans) - requeued} had been retried {MAX_RETRIES} times and were given up" \
        if requeued < len(orphans) else ""
    return f"{len(orphans)} trial(s) left running by a killed process were failed; {requeued} queued again{given_up}."


def work_on_study(study: optuna.Study, settings: SearchSettings, plugins: Plugins, table: ImageTable,
                  space: dict[str, Any], console: Console, admission: SingleProcessAdmission,
                  on_ready: Callable[[optuna.Study, int], None] | None = None,
                  costs: SearchCosts | None = None) -> SearchResult:
    """Take trials from the study, as one of possibly many workers, until its budget is met, the deadline
    passes or the next trial cannot finish in the time left. ``costs``: this process's cost model (its
    sampler's, too); made here when not given."""
    result = SearchResult(study=study)
    key = study_key(study)
    claim_folder(study_folder(settings.artifacts, key), settings.study_name, key)  # a worker's own folder, too
    if not isinstance(admission, PostgresAdmission):  # one process per study: what is RUNNING was left by a killed one
        orphans = fail_orphaned_trials(study)
        if orphans:
            result.notes.append(orphans_note(orphans))
    budget = study_budget(study, settings.trials)
    finished = finished_count(study)
    if on_ready is not None:
        on_ready(study, finished)
    if budget is not None and finished >= budget:
        result.notes.append(
            f"Study {settings.study_name!r} already has {finished} finished trials (budget {budget}); "
            f"nothing to run. Raise --trials to add more."
        )
        return result
    started = time.perf_counter()
    deadline = search_deadline(settings)
    best = study.best_value if any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) else None
    failures_in_a_row = 0
    poll_s = max(1.0, settings.heartbeat_s / 2)  # how often to look again while every slot is taken
    pauses = wait_times(poll_s)
    costs = costs if costs is not None else SearchCosts(settings, plugins, table, deadline)
    legend = score_legend(settings.cv_folds)
    not_started_in_a_row = 0
    with (running_under(deadline),
          SearchProgress(console, budget, finished, best, bars=settings.show_bars, deadline=deadline,
                         score_legend=legend) as progress,
          TrialRunner(study, settings, plugins, table, space, progress, deadline, costs) as runner):
        while True:  # (leaving the runner queues the trials it did not start again, for the next run)
            raise_if_interrupted()
            if deadline is not None and deadline.passed():  # no trial starts after the deadline
                result.stopped_by = "timeout"
                break
            budget = study_budget(study, settings.trials)
            trial = None
            try:
                with storage_write(), charged(STUDY_WRITES):
                    slots, trial = admission.admit(study, budget, GRACE_HEARTBEATS * settings.heartbeat_s)
            except KeyboardInterrupt:  # arrived during admission: hand the trial back before stopping
                if trial is not None:
                    raise runner.give_back(trial, INTERRUPTED) from None
                raise
            progress.study_finished(slots.finished, budget)
            if slots.done:
                break
            if trial is None:  # every remaining slot is held by a running trial of another worker
                time.sleep(next(pauses))
                continue
            pauses = wait_times(poll_s)
            try:
                costs.refresh(study)  # calibrated by every trial finished so far, this worker's or another's
                with charged_trial(trial.number):
                    state = run_admitted(runner, trial, admission, settings.heartbeat_s)
            except StoppedTrial:
                raise
            except KeyboardInterrupt:  # also one that arrived before the trial's own handler was in place
                raise runner.give_back(trial, INTERRUPTED) from None
            if runner.not_started is not None:  # not even its smallest version fits the time left: another might
                not_started_in_a_row += 1
                if not_started_in_a_row >= MAX_NOT_STARTED:
                    result.stopped_by = "nothing fits"
                    break
                continue
            not_started_in_a_row = 0
            result.ran += 1
            if deadline is not None and deadline.passed():  # the trial ended at the deadline, whatever its state
                result.stopped_by = "timeout"
                break
            if state == TrialState.FAIL:
                failures_in_a_row += 1
                if failures_in_a_row >= settings.max_consecutive_failures:
                    result.stopped_by = "failures"
                    break
            else:
                failures_in_a_row = 0
    result.seconds = time.perf_counter() - started
    return result


def run_admitted(runner: TrialRunner, trial: optuna.Trial, admission: SingleProcessAdmission, heartbeat_s: int) -> TrialState:
    """Run one trial; on a shared database its heartbeat tells other workers it is alive."""
    if not isinstance(admission, PostgresAdmission):
        return runner.run(trial)
    storage: Any = runner.study._storage  # an RDBStorage, which records heartbeats (Optuna's BaseHeartbeat)
    trial_id = trial._trial_id
    with Heartbeat(lambda: storage.record_heartbeat(trial_id), heartbeat_s):
        return runner.run(trial)
