"""``search`` and ``worker``: run a study's trials, alone or as one of many workers."""

from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from automl_tl.api.audit_commands import audit_before_search, keep_audit, record_label_issues
from automl_tl.api.common import announce_sample, command_plugins, console, data_location, err_console, read_images
from automl_tl.api.plugin_files import check_study_backbones, record_plugin_files
from automl_tl.errors import UserError
from automl_tl.runtime.env_vars import CV
from automl_tl.runtime.shown_text import console_text
from automl_tl.storage.urls import DEFAULT_HEARTBEAT_S, database_errors

CV_ENV = CV.name
SEED_LIMIT = 2**32  # numpy's and Optuna's samplers take seeds in [0, 2**32)
DEFAULT_TRIALS = 50  # search --trials when neither it nor --timeout is given (--timeout alone: no count)


def command_deadline(args: argparse.Namespace) -> Any:
    """The command's deadline from ``--timeout``, counted from the command's start; None without one."""
    from automl_tl.runtime.deadline import Deadline

    timeout = getattr(args, "timeout", None)
    return Deadline.after(timeout, getattr(args, "command_started", None)) if timeout else None


def timed_out(stopped: Any, deadline: Any, what: str) -> int:
    """A deadline that passed before any trial could run: said in one line, exit 0 (nothing is wrong but the time)."""
    console.print(f"Stopped by --timeout {deadline.seconds:g}s, {deadline.spent():.1f}s after the command started: "
                  f"{console_text(stopped.detail)}. No {what} ran, and nothing half-written was kept. Run the same command "
                  f"with a larger --timeout (or none) to get past it.", highlight=False)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """``search`` on the command line: ``searched_study`` (which ``automl_tl.search`` calls too)."""
    searched_study(args)
    return 0


def searched_study(args: argparse.Namespace) -> str | None:
    """Run the search ``args`` describe (the CLI's parsed options, or ``automl_tl.search``'s); everything after
    the numbers are checked runs under the command's deadline (--timeout). Returns the study's name, or None
    where the deadline passed before any study was opened."""
    from automl_tl.runtime.deadline import DeadlineReached, running_under
    from automl_tl.runtime.time_ledger import TimeLedger

    args.cv = requested_cv(args.cv)
    if args.trials is not None and args.trials < 1:
        raise UserError(f"--trials {args.trials}: the study's total number of finished trials must be at least 1.")
    if args.image_size != "auto" and not 16 <= args.image_size <= 1024:
        raise UserError(f"--image-size {args.image_size}: choose auto, or between 16 and 1024 pixels.")
    check_numbers(args)
    deadline = command_deadline(args)
    ledger = TimeLedger()  # where the time goes: said after the search, kept with the study
    with running_under(deadline), ledger.recording():
        try:
            return search_command(args, deadline, ledger)
        except DeadlineReached as stopped:
            timed_out(stopped, deadline, "trial")
            return None


def search_command(args: argparse.Namespace, deadline: Any, ledger: Any = None) -> str:
    """The search itself, its input checked (see ``searched_study``); ``ledger``: the command's ``TimeLedger``.
    Returns the study's name."""
    from automl_tl.distributed.loop import run_search
    from automl_tl.distributed.workers import check_workers
    from automl_tl.runtime.time_ledger import DECODE
    from automl_tl.storage.stored_attrs import existing_study_attrs
    from automl_tl.storage.urls import artifact_places, check_database_place, check_study_name, storage_url, study_name_for
    from automl_tl.tuning.backbone_choice import chosen_frameworks, select_backbones
    from automl_tl.tuning.latency_limit import resumed_limit
    from automl_tl.tuning.scoring import choose_scoring, recorded_cv_folds
    from automl_tl.tuning.settings import SearchSettings
    from automl_tl.tuning.study_input import study_input

    announce_sample(args.data)  # first: a search of the bundled sample is said before anything else
    trials = args.trials if args.trials is not None else (None if args.timeout else DEFAULT_TRIALS)
    if args.study is not None:
        check_study_name(args.study)  # before any slow work; an empty name is refused, not replaced
    if args.workers is not None:
        check_workers(args.workers, storage_url(args.study or "study", args.storage))
    plugins = command_plugins(args)
    frameworks = chosen_frameworks(plugins, args.framework)
    backbones, skipped = select_backbones(plugins, frameworks, args.backbones)
    say_skipped_backbones(skipped, bool(args.backbones))
    location = data_location(args.data, announced=True)  # the sample is written only once the arguments passed
    splits = plugins.discover(location)
    name = check_study_name(args.study if args.study is not None else study_name_for(location))
    check_database_place(storage_url(name, args.storage))  # before the images are read
    counts = {s: len(splits.indices(s)) for s in ("train", "val", "test")}
    console.print(f"[bold]Data[/] {console_text(splits.source)}: {len(splits.class_names)} classes, "
                  f"{counts['train']} train / {counts['val']} val / {counts['test']} test images")
    with database_errors(storage_url(name, args.storage)):
        chosen = study_input([plugins.backbone(n) for n in backbones], splits, storage_url(name, args.storage), name,
                             image_size=args.image_size, epochs=args.epochs, resize=args.resize_given,
                             timeout=args.timeout)
        scored_images = counts["train"] + counts["val"]
        scoring = choose_scoring(args.cv, counts["val"], scored_images, recorded_cv_folds(storage_url(name, args.storage), name))
        latency_limit, latency_note = resumed_limit(args.max_latency_ms, existing_study_attrs(storage_url(name, args.storage), name))
    size, rule = chosen.image_size, chosen.rule
    console.print(f"[bold]Input[/] {size} px ({console_text(chosen.size_why)}); {console_text(rule.describe())}; "
                  f"{chosen.epochs} epoch{'' if chosen.epochs == 1 else 's'} per trial at most ({console_text(chosen.epochs_why)})")
    if scoring.describe(scored_images):
        console.print(f"[bold]Scoring[/] {console_text(scoring.describe(scored_images))}")
    if latency_note:
        console.print(f"[bold]Latency limit[/] {console_text(latency_note)}.", highlight=False)
    if deadline is not None:
        say_slow_first_pass(splits.items, size, rule, args.max_pixels, deadline)
    with ledger.phase(DECODE) if ledger is not None else nullcontext():
        table = read_images(splits, size, rule, max_pixels=args.max_pixels)
    audit = audit_before_search(table, splits, size, args.data or location, bool(getattr(args, "strict", False)))
    url = storage_url(name, args.storage)
    local_artifacts, remote_artifacts = artifact_places(name, args.artifacts)
    settings = SearchSettings(
        study_name=name, storage_url=url, artifacts=local_artifacts, artifacts_remote=remote_artifacts, trials=trials,
        epochs=chosen.epochs, image_size=size, backbones=backbones, data_location=str(Path(location).resolve()),
        seed=args.seed, timeout=args.timeout, pruner=args.pruner, truncation=args.truncation, warm_start=getattr(args, "warm_start", None),
        smart_start=args.smart_start, heartbeat_s=args.heartbeat, max_pixels=args.max_pixels,
        resize=rule, image_size_reason=chosen.size_why, max_latency_ms=latency_limit, cv_folds=scoring.folds,
    )
    if args.workers is not None:
        with database_errors(url):
            search_with_workers(args, settings, plugins, table, deadline, audit)
        return name

    def ready(study: Any, finished: int) -> None:
        from automl_tl.storage.urls import redact
        from automl_tl.tuning.budget import describe_budget

        record_plugin_files(study, plugins, args.plugin or [])
        keep_audit(study, audit)
        console.print(f"[bold]Study[/] {name!r} in {console_text(redact(url))}: {finished} finished, budget "
                      f"{describe_budget(trials)}; backbones: {console_text(', '.join(backbones))}")

    with database_errors(url):
        result = run_search(settings, plugins, table, console, on_ready=ready)
        record_label_issues(result.study, table, audit, args.artifacts)
        summary = keep_time_summary(result.study, ledger, deadline) if ledger is not None else None
    report_result(result, settings, plugins, deadline, summary)
    return name


def say_skipped_backbones(skipped: list[str], named: bool) -> None:
    """The backbones left out: each by name when --backbones named them, else one line with their count."""
    if skipped and named:
        for line in skipped:
            err_console.print(f"[yellow]skipping backbone[/] {console_text(line)}")
    elif skipped:
        console.print(f"{len(skipped)} backbone(s) without pretrained weights here are left out; `automl-tl backbones` lists them.")


def keep_time_summary(study: Any, ledger: Any, deadline: Any) -> dict[str, Any]:
    """Where the search's time went (``time_summary_json``, from the command's start under --timeout), kept as
    the study's attribute for ``show`` and the report."""
    from automl_tl.runtime.interrupts import storage_write
    from automl_tl.study_record import TIME_SUMMARY_ATTR
    from automl_tl.tuning.time_summary import time_summary_json

    summary = time_summary_json(ledger, study.get_trials(deepcopy=False),
                                total=deadline.spent() if deadline is not None else None)
    with storage_write():
        study.set_user_attr(TIME_SUMMARY_ATTR, summary)
    return summary


def say_slow_first_pass(items: Any, size: int, rule: Any, max_pixels: int, deadline: Any) -> None:
    """Before the images are read: when decoding them and a first backbone pass alone would take longer than
    the time left, say so with the estimate (the search goes on, and stops cleanly if the time runs out)."""
    from automl_tl.data.first_pass import estimate_first_pass

    first = estimate_first_pass(items, size, rule, max_pixels)
    if first.seconds > deadline.remaining():
        console.print(f"[yellow]note[/] {console_text(first.describe())}: more than the {deadline.remaining():.0f}s left "
                      f"of --timeout {deadline.seconds:g}s, so the search may stop before any trial (images decoded by an "
                      f"earlier run are read from the store instead).", highlight=False)


def report_result(result: Any, settings: Any, plugins: Any, deadline: Any = None,
                  time_summary: dict[str, Any] | None = None) -> None:
    """What a search did: its notes, the leaderboard, where the time went, and why it stopped."""
    from automl_tl.report.leaderboard import leaderboard_table
    from automl_tl.tuning.latency import limit_note
    from automl_tl.tuning.time_summary import time_table

    name = settings.study_name
    for note in result.notes:
        console.print(console_text(note))
    console.print(leaderboard_table(result.study))
    limited = limit_note(result.study.get_trials(deepcopy=False), settings.max_latency_ms)
    if limited:
        console.print(console_text(limited), highlight=False)
    if time_summary is not None:
        console.print(time_table(time_summary))
    if result.stopped_by == "failures":
        raise UserError(f"{settings.max_consecutive_failures} trials in a row failed; see `automl-tl show {name}` for the reasons.")
    if result.stopped_by == "timeout":
        spent = deadline.spent() if deadline is not None else result.seconds
        console.print(f"Stopped by --timeout {settings.timeout:g}s, {spent:.1f}s after the command started; run the "
                      f"same command again to continue.", highlight=False)
    if result.stopped_by == "nothing fits":
        spent = deadline.spent() if deadline is not None else result.seconds
        limit = f" of --timeout {settings.timeout:g}s" if settings.timeout else ""
        console.print(f"Stopped after {spent:.1f}s{limit}: the last trials drawn would not finish in the time left, even "
                      f"shrunk, so they were not started (they are queued for the next run); run the same command "
                      f"again to continue.", highlight=False)
    console.print(f"Ran {result.ran} trial(s) in {result.seconds:.0f}s. {console_text(export_hint(result.study, plugins))}")


def export_hint(study: Any, plugins: Any) -> str:
    from automl_tl.deploy.export import best_export_format

    name = study.study_name
    return f"Export the best with: automl-tl export {name} --format {best_export_format(study, plugins)} -o exports/{name}"


def check_numbers(args: argparse.Namespace) -> None:
    """Numbers of ``search`` and ``worker`` that make no sense, refused before any study is made or data read."""
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise UserError(f"--seed {seed}: give a whole number from 0 to {SEED_LIMIT - 1} (the random generators "
                        f"take 32-bit seeds).")
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not timeout > 0:  # NaN too
        raise UserError(f"--timeout {timeout:g}: give a number of seconds above 0, or leave --timeout out to run "
                        f"until the budget of trials is met.")
    epochs = getattr(args, "epochs", None)
    if isinstance(epochs, int) and epochs < 1:
        raise UserError(f"--epochs {epochs}: a trial needs at least one epoch.")
    heartbeat = getattr(args, "heartbeat", None)
    if heartbeat is not None and heartbeat < 1:
        raise UserError(f"--heartbeat {heartbeat}: give at least 1 second (default {DEFAULT_HEARTBEAT_S}); a worker "
                        f"silent for 3 heartbeats has its trial retried elsewhere.")
    max_pixels = getattr(args, "max_pixels", None)
    if max_pixels is not None and max_pixels < 1:
        raise UserError(f"--max-pixels {max_pixels}: give the largest image size to accept, in pixels (width times "
                        f"height, at least 1; default 40000000).")
    if getattr(args, "cv", None) is not None:
        from automl_tl.tuning.scoring import check_cv_option

        check_cv_option(args.cv)
    max_latency = getattr(args, "max_latency_ms", None)
    if isinstance(max_latency, float) and not (0 < max_latency < float("inf")):  # NaN too; "off" lifts a limit
        raise UserError(f"--max-latency-ms {max_latency:g}: give the most milliseconds the exported model may take "
                        f"to classify one image on this machine's CPU (a number above 0), or leave it out.")


def requested_cv(given: str | int | None) -> str | int:
    """``--cv`` as given, else ``$AUTOML_TL_CV``, else auto. A bad environment value is refused naming the
    variable, not the flag the user never typed."""
    from automl_tl.training.folds import MAX_FOLDS, MIN_FOLDS
    from automl_tl.tuning.scoring import check_cv_option

    if given is not None:
        return given
    raw = CV.value("")
    word = raw.strip().lower()
    if not word:
        return "auto"
    if word in ("auto", "off"):
        return word
    try:
        folds = int(word)
        check_cv_option(folds)
    except (ValueError, UserError):
        raise UserError(f"{CV_ENV}={raw!r}: the environment variable sets search --cv's default; give auto, off or a "
                        f"number of folds from {MIN_FOLDS} to {MAX_FOLDS}, or unset it.") from None
    return folds


def search_with_workers(args: argparse.Namespace, settings: Any, plugins: Any, table: Any, deadline: Any = None,
                        audit: Any = None) -> int:
    """Prepare the study once (keeping ``audit``, the data audit, on it), then start --workers N worker
    processes on it (0: prepare only)."""
    from automl_tl.distributed.loop import make_admission
    from automl_tl.distributed.workers import run_local_workers
    from automl_tl.report.leaderboard import leaderboard_table
    from automl_tl.storage.urls import redact
    from automl_tl.tuning.lifecycle import prepare_study

    admission = make_admission(settings)  # on SQLite this also refuses a second process
    try:
        study, _ = prepare_study(settings, plugins, table, console)
        record_plugin_files(study, plugins, args.plugin or [])
        if audit is not None:
            keep_audit(study, audit)
    finally:
        admission.close()
    name, url = settings.study_name, settings.storage_url
    if args.workers == 0:
        budget = (f"a budget of {settings.trials} trials" if settings.trials is not None else
                  "no count of trials: each worker runs until its own --timeout")
        console.print(f"Study {name!r} is ready in {console_text(redact(url))} with {budget}. Start "
                      f"workers on any machine that reaches the database and the artifacts with:\n"
                      f"  AUTOML_TL_STORAGE='{console_text(redact(url))}' automl-tl worker --study {name}"
                      f"{' --timeout SEC' if settings.trials is None else ''}")
        return 0
    started = time.perf_counter()
    codes = run_local_workers(args.workers, study, url, settings.data_location, list(args.plugin or []), console,
                              timeout=deadline.remaining() if deadline is not None else None)
    console.print(leaderboard_table(study))
    failed = [code for code in codes if code != 0]
    if failed:
        raise UserError(
            f"{len(failed)} of {len(codes)} workers stopped with an error (their messages are above). Finished trials "
            f"are saved in the study; run the same command again to finish it."
        )
    console.print(f"{args.workers} workers finished the study in {time.perf_counter() - started:.0f}s. "
                  f"{console_text(export_hint(study, plugins))}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from automl_tl.distributed.workers import read_stored_study, run_worker, worker_settings
    from automl_tl.runtime.deadline import DeadlineReached, running_under
    from automl_tl.storage.urls import (
        artifact_places,
        check_database_place,
        check_study_name,
        is_postgres,
        is_sqlite,
        recorded_artifact_places,
        redact,
        sqlite_file,
        storage_url,
    )

    name = check_study_name(args.study)
    check_numbers(args)
    deadline = command_deadline(args)
    url = storage_url(name, args.storage)
    if not (is_postgres(url) or is_sqlite(url)):
        raise UserError(
            f"--storage {redact(url)}: workers share a study through PostgreSQL, whose locks keep the budget exact "
            f"and find killed workers. Use a postgresql:// URL (see 'Many machines' in docs/user-guide/studies.md)."
        )
    database = sqlite_file(url) if is_sqlite(url) else None
    if database is not None and database.is_file():
        check_database_place(url)
    with database_errors(url):
        stored = read_stored_study(name, url)
        plugins = command_plugins(args)
        for line in check_study_backbones(plugins, stored.attrs, stored.settings.backbones, args.plugin or []):
            err_console.print(f"[yellow]warning[/] {console_text(line)}", highlight=False)
        location = args.data or stored.data_location
        splits = plugins.discover(location)
        local, remote = (artifact_places(name, args.artifacts) if args.artifacts
                         else recorded_artifact_places(name, stored.artifacts))
        settings = worker_settings(stored, plugins, str(Path(location).resolve()), local, args.timeout,
                                   show_bars=not args.lines, artifacts_remote=remote)
        max_pixels = args.max_pixels or stored.settings.max_pixels
        with running_under(deadline):
            try:
                table = read_images(splits, settings.image_size, settings.resize, max_pixels=max_pixels,
                                    show_progress=not args.lines)
                console.print(f"[bold]Worker[/] {os.getpid()} joins study {name!r} in {console_text(redact(url))}")
                result = run_worker(settings, plugins, table, console)
            except DeadlineReached as stopped:
                return timed_out(stopped, deadline, "trial of this worker")
    for note in result.notes:
        console.print(console_text(note))
    if result.stopped_by == "failures":
        raise UserError(f"{settings.max_consecutive_failures} trials in a row failed on this worker; see `automl-tl show {name}`.")
    console.print(f"Worker {os.getpid()} ran {result.ran} trial(s) in {result.seconds:.0f}s; study {name!r} "
                  f"{'has met its budget' if result.stopped_by == 'budget' else 'stopped by --timeout'}.")
    return 0
