"""The command line: a thin layer over the core. Exit codes: 0 ok, 2 bad input, 1 internal error, 130 stopped."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.markup import escape

from . import __version__
from .errors import UserError
from .interrupts import StoppedTrial, interrupts_as_keyboard_interrupt
from .pruning import DEFAULT_PRUNER, PRUNERS
from .storage import DEFAULT_HEARTBEAT_S, database_errors

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notices are not for users

# Logs and pipes get a wide console so tables stay readable; a terminal keeps its own width.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

DEFAULT_EPOCHS = "auto"
DEFAULT_IMAGE_SIZE = "auto"
DEFAULT_TRIALS = 50


# -- helpers --------------------------------------------------------------------------------
def _plugins(args: argparse.Namespace) -> Any:
    from .plugins import load_plugins

    return load_plugins(plugin_files=getattr(args, "plugin", None) or [])


def _data_location(data: str | None) -> str:
    if data:
        return data
    from .data.sample import ensure_sample

    return str(ensure_sample())


def _frameworks(plugins: Any, choice: str) -> list[str]:
    if choice == "all":
        return [name for name, adapter in plugins.frameworks.items() if adapter.is_installed()]
    if choice not in plugins.frameworks:
        hint = " Install it with: pip install 'automl-tl[keras]'." if choice == "keras" else ""
        raise UserError(f"--framework {choice}: no such framework plugin is loaded.{hint} Loaded: "
                        f"{', '.join(plugins.frameworks) or 'none'}.{plugins.failed_plugins_hint()}")
    if not plugins.framework(choice).is_installed():
        raise UserError(f"--framework {choice}: the framework is not installed in this environment.")
    return [choice]


def select_backbones(plugins: Any, frameworks: list[str], patterns: str | None) -> tuple[list[str], list[str]]:
    """Backbones to search: matching names in the chosen frameworks whose pretrained weights are here.

    Returns (usable, skipped-with-reason). A backbone without weights is never silently trained from scratch.
    """
    names = [n for n in plugins.backbones.names(patterns) if plugins.backbone(n).framework in frameworks]
    usable, skipped = [], []
    for name in names:
        spec = plugins.backbone(name)
        if not spec.pretrained or spec.weights_available():
            usable.append(name)
        else:
            skipped.append(f"{name} (pretrained weights not found: {spec.weights.where if spec.weights else ''})")
    if not usable:
        if not names:
            raise UserError(f"--backbones {patterns!r} matches no backbone of framework {', '.join(frameworks)}. "
                            f"See `automl-tl backbones`.{plugins.failed_plugins_hint()}")
        raise UserError(
            f"None of the chosen backbones has its pretrained weights available here: {'; '.join(skipped)}. "
            f"Download them once with network access (torchvision's weights= API caches them), or run `make setup` "
            f"for the offline MobileNetV2 weights."
        )
    return usable, skipped


# -- commands -------------------------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    from .data.loader import describe_skipped, load_table
    from .search_input import study_input
    from .storage import artifact_places, check_database_place, check_study_name, storage_url, study_name_for
    from .study import SearchSettings, run_search

    if args.trials < 1:
        raise UserError(f"--trials {args.trials}: the study's total number of finished trials must be at least 1.")
    if args.image_size != "auto" and not 16 <= args.image_size <= 1024:
        raise UserError(f"--image-size {args.image_size}: choose auto, or between 16 and 1024 pixels.")
    check_numbers(args)
    if args.study is not None:
        check_study_name(args.study)  # before any slow work; an empty name is refused, not replaced
    if args.workers is not None:
        check_workers(args.workers, storage_url(args.study or "study", args.storage))
    plugins = _plugins(args)
    frameworks = _frameworks(plugins, args.framework)
    backbones, skipped = select_backbones(plugins, frameworks, args.backbones)
    if skipped and args.backbones:
        for line in skipped:
            err_console.print(f"[yellow]skipping backbone[/] {escape(line)}")
    elif skipped:
        console.print(f"{len(skipped)} backbone(s) without pretrained weights here are left out; `automl-tl backbones` lists them.")
    location = _data_location(args.data)
    splits = plugins.dataset_for(location).discover(location)
    name = check_study_name(args.study if args.study is not None else study_name_for(location))
    check_database_place(storage_url(name, args.storage))  # before the images are read
    counts = {s: len(splits.indices(s)) for s in ("train", "val", "test")}
    console.print(f"[bold]Data[/] {escape(splits.source)}: {len(splits.class_names)} classes, "
                  f"{counts['train']} train / {counts['val']} val / {counts['test']} test images")
    with database_errors(storage_url(name, args.storage)):
        chosen = study_input([plugins.backbone(n) for n in backbones], splits, storage_url(name, args.storage), name,
                             image_size=args.image_size, epochs=args.epochs, resize=args.resize_given,
                             timeout=args.timeout)
    size, rule = chosen.image_size, chosen.rule
    console.print(f"[bold]Input[/] {size} px ({escape(chosen.size_why)}); {escape(rule.describe())}; "
                  f"{chosen.epochs} epoch{'' if chosen.epochs == 1 else 's'} per trial at most ({escape(chosen.epochs_why)})")
    table = load_table(splits, size, max_pixels=args.max_pixels, show_progress=True, rule=rule)
    if table.skipped:
        err_console.print(f"[yellow]warning[/] {escape(describe_skipped(table.skipped))}")
    url = storage_url(name, args.storage)
    local_artifacts, remote_artifacts = artifact_places(name, args.artifacts)
    settings = SearchSettings(
        study_name=name, storage_url=url, artifacts=local_artifacts, artifacts_remote=remote_artifacts, trials=args.trials,
        epochs=chosen.epochs, image_size=size, backbones=backbones, data_location=str(Path(location).resolve()),
        seed=args.seed, timeout=args.timeout, pruner=args.pruner, truncation=args.truncation,
        smart_start=args.smart_start, heartbeat_s=args.heartbeat, max_pixels=args.max_pixels,
        resize=rule, image_size_reason=chosen.size_why,
    )
    if args.workers is not None:
        with database_errors(url):
            return _search_with_workers(args, settings, plugins, table)

    def ready(study: Any, finished: int) -> None:
        from .storage import redact

        console.print(f"[bold]Study[/] {name!r} in {escape(redact(url))}: {finished} finished, budget {args.trials}; "
                      f"backbones: {escape(', '.join(backbones))}")

    with database_errors(url):
        result = run_search(settings, plugins, table, console, on_ready=ready)
    _report_result(result, settings, plugins)
    return 0


def auto_or_int(option: str) -> Callable[[str], str | int]:
    """An argparse type: ``auto`` or a whole number (the command checks the range)."""

    def parse(text: str) -> str | int:
        if text.strip().lower() == "auto":
            return "auto"
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give auto or a whole number for {option}") from None

    return parse


def _report_result(result: Any, settings: Any, plugins: Any) -> None:
    from .leaderboard import leaderboard_table

    name = settings.study_name
    for note in result.notes:
        console.print(escape(note))
    console.print(leaderboard_table(result.study))
    if result.stopped_by == "failures":
        raise UserError(f"{settings.max_consecutive_failures} trials in a row failed; see `automl-tl show {name}` for the reasons.")
    if result.stopped_by == "timeout":
        console.print(f"Stopped by --timeout after {result.seconds:.0f}s; run the same command again to continue.")
    console.print(f"Ran {result.ran} trial(s) in {result.seconds:.0f}s. {escape(_export_hint(result.study, plugins))}")


def _export_hint(study: Any, plugins: Any) -> str:
    from .leaderboard import ranked_trials

    best_format = "onnx"
    ranked = ranked_trials(study)
    if ranked and ranked[0].user_attrs.get("framework") in plugins.frameworks:
        best_format = (plugins.framework(ranked[0].user_attrs["framework"]).export_formats or (best_format,))[0]
    return f"Export the best with: automl-tl export {study.study_name} --format {best_format} -o exports/{study.study_name}"


SEED_LIMIT = 2**32  # numpy's and Optuna's samplers take seeds in [0, 2**32)


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


def check_workers(workers: int, url: str) -> None:
    """--workers: 0 prepares the study only; more than one needs PostgreSQL."""
    from .storage import is_postgres, redact

    if workers < 0:
        raise UserError(f"--workers {workers}: give 0 (prepare the study only) or more workers.")
    if workers > 1 and not is_postgres(url):
        raise UserError(
            f"--workers {workers}: several workers need a shared database, and {redact(url)} is not one. SQLite "
            f"serves one process at a time. Put the study in PostgreSQL with --storage postgresql://USER@HOST/DB "
            f"(see 'Many machines' in the README)."
        )


def _search_with_workers(args: argparse.Namespace, settings: Any, plugins: Any, table: Any) -> int:
    """Prepare the study once, then start --workers N worker processes on it (0: prepare only)."""
    from .leaderboard import leaderboard_table
    from .storage import redact
    from .study import make_admission, prepare_study
    from .worker import run_local_workers

    admission = make_admission(settings)  # on SQLite this also refuses a second process
    try:
        study, _ = prepare_study(settings, plugins, table, console)
    finally:
        admission.close()
    name, url = settings.study_name, settings.storage_url
    if args.workers == 0:
        console.print(f"Study {name!r} is ready in {escape(redact(url))} with a budget of {settings.trials} trials. Start "
                      f"workers on any machine that reaches the database and the artifacts with:\n"
                      f"  AUTOML_TL_STORAGE='{escape(redact(url))}' automl-tl worker --study {name}")
        return 0
    started = time.perf_counter()
    codes = run_local_workers(args.workers, study, url, settings.data_location, list(args.plugin or []), console)
    console.print(leaderboard_table(study))
    failed = [code for code in codes if code != 0]
    if failed:
        raise UserError(
            f"{len(failed)} of {len(codes)} workers stopped with an error (their messages are above). Finished trials "
            f"are saved in the study; run the same command again to finish it."
        )
    console.print(f"{args.workers} workers finished the study in {time.perf_counter() - started:.0f}s. "
                  f"{escape(_export_hint(study, plugins))}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .data.loader import describe_skipped, load_table
    from .storage import (artifact_places, check_database_place, check_study_name, is_postgres, is_sqlite,
                          recorded_artifact_places, redact, sqlite_file, storage_url)
    from .worker import read_stored_study, run_worker, worker_settings

    name = check_study_name(args.study)
    check_numbers(args)
    url = storage_url(name, args.storage)
    if not (is_postgres(url) or is_sqlite(url)):
        raise UserError(
            f"--storage {redact(url)}: workers share a study through PostgreSQL, whose locks keep the budget exact "
            f"and find killed workers. Use a postgresql:// URL (see 'Many machines' in the README)."
        )
    if is_sqlite(url) and sqlite_file(url) is not None and sqlite_file(url).is_file():
        check_database_place(url)
    with database_errors(url):
        stored = read_stored_study(name, url)
        plugins = _plugins(args)
        location = args.data or stored.data_location
        splits = plugins.dataset_for(location).discover(location)
        local, remote = (artifact_places(name, args.artifacts) if args.artifacts
                         else recorded_artifact_places(name, stored.artifacts))
        settings = worker_settings(stored, plugins, str(Path(location).resolve()), local, args.timeout,
                                   show_bars=not args.lines)
        settings.artifacts_remote = remote
        max_pixels = args.max_pixels or int(stored.settings.get("max_pixels", 40_000_000))
        table = load_table(splits, settings.image_size, max_pixels=max_pixels, show_progress=not args.lines,
                           rule=settings.resize)
        if table.skipped:
            err_console.print(f"[yellow]warning[/] {escape(describe_skipped(table.skipped))}")
        console.print(f"[bold]Worker[/] {os.getpid()} joins study {name!r} in {escape(redact(url))}")
        result = run_worker(settings, plugins, table, console)
    for note in result.notes:
        console.print(escape(note))
    if result.stopped_by == "failures":
        raise UserError(f"{settings.max_consecutive_failures} trials in a row failed on this worker; see `automl-tl show {name}`.")
    console.print(f"Worker {os.getpid()} ran {result.ran} trial(s) in {result.seconds:.0f}s; study {name!r} "
                  f"{'has met its budget' if result.stopped_by == 'budget' else 'stopped by --timeout'}.")
    return 0


def _study_artifacts(study: Any, option: str | None) -> tuple[Path, str | None]:
    """The folder (and S3 mirror, if any) of this study's own artifacts: ``--artifacts`` or where it records them."""
    from .artifacts import remote_study_folder, study_folder, study_key
    from .storage import artifact_places, recorded_artifact_places

    key = study_key(study)
    local, remote = (artifact_places(study.study_name, option) if option
                     else recorded_artifact_places(study.study_name, study.user_attrs.get("artifacts")))
    return study_folder(local, key), remote_study_folder(remote, key)


def _load_study(name: str, storage: str | None) -> Any:
    from .storage import (check_study_name, explicit_storage, missing_database, open_storage, redact, storage_url,
                          sqlite_path)
    from .study import quiet_optuna

    import optuna

    quiet_optuna()
    check_study_name(name)
    if explicit_storage(storage) is None and not sqlite_path(name).is_file():
        raise UserError(f"No study named {name!r}: {sqlite_path(name)} does not exist. `automl-tl studies` lists them.")
    url = storage_url(name, storage)
    missing = missing_database(url)  # opening it would create the file and its folders
    if missing is not None:
        raise missing
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise UserError(f"No study named {name!r} in {redact(url)}. `automl-tl studies` lists them.") from None


def cmd_show(args: argparse.Namespace) -> int:
    from .leaderboard import leaderboard_table, study_summary

    study = _load_study(args.name, args.storage)
    summary = study_summary(study)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    counts = ", ".join(f"{k.lower()} {v}" for k, v in summary["counts"].items() if v)
    console.print(f"[bold]Study {escape(repr(args.name))}[/]: {counts or 'no trials'}")
    shown = summary["input"]
    if shown["image_size"] is not None:
        console.print(f"Input: {shown['image_size']} px ({escape(str(shown['why']))}); {escape(shown['rule'])}")
    best = summary["best_trial"]
    if best:
        attrs = best["user_attrs"]
        console.print(f"Best trial {best['number']}: val acc {best['value']:.4f}, test acc {attrs.get('test_accuracy', float('nan')):.4f}, "
                      f"balanced val acc {attrs.get('val_balanced_accuracy', float('nan')):.4f}")
        console.print("Best params: " + escape(", ".join(f"{k}={v}" for k, v in best["params"].items())))
    console.print(leaderboard_table(study))
    for number, reason in summary["smart_start"].items():
        console.print(f"[cyan]smart start[/] trial {number}: {escape(reason)}")
    for failure in summary["failures"][-5:]:
        console.print(f"[red]failed[/] trial {failure['trial']}: {escape(str(failure['reason']))}")
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    import optuna

    from .storage import explicit_storage, missing_database, open_storage, redact, studies_dir
    from .study import quiet_optuna

    quiet_optuna()
    chosen = explicit_storage(args.storage)
    missing = missing_database(chosen) if chosen else None  # opening it would create the file and its folders
    if missing is not None:
        raise missing
    urls = [chosen] if chosen else [f"sqlite:///{p}" for p in sorted(studies_dir().glob("*.db"))]
    rows = []
    for url in urls:
        for summary in optuna.get_all_study_summaries(storage=open_storage(url), include_best_trial=True):
            best = summary.best_trial
            rows.append({"study": summary.study_name, "storage": redact(url), "trials": summary.n_trials,
                         "best_value": best.value if best else None,
                         "best_backbone": best.params.get("backbone") if best else None})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        console.print(f"No studies in {escape(str(chosen and redact(chosen) or studies_dir()))}.")
        return 0
    from rich.table import Table

    table = Table(title="Studies")
    for column in ("study", "trials", "best val acc", "best backbone", "storage"):
        table.add_column(column)
    for row in rows:
        table.add_row(escape(row["study"]), str(row["trials"]),
                      f"{row['best_value']:.4f}" if row["best_value"] is not None else "-",
                      escape(str(row["best_backbone"] or "-")), escape(row["storage"]))
    console.print(table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_trial
    from .export import choose_trial, fetch_remote_artifacts

    study = _load_study(args.name, args.storage)
    local, remote = _study_artifacts(study, args.artifacts)
    plugins = _plugins(args)
    out_dir = Path(args.output).expanduser().resolve()
    number = choose_trial(study, args.trial)
    if remote:
        with console.status(f"Downloading trial {number}'s artifacts from {escape(remote)} ..."):
            fetch_remote_artifacts(remote, local, number)
    report = export_trial(plugins, study, local, args.format, out_dir, number, overwrite=args.overwrite)
    console.print(f"Exported trial {report.trial} of {args.name!r} as {args.format} to [bold]{escape(str(report.directory))}[/]")
    console.print(f"Parity check on {report.images_checked} validation images: largest probability difference "
                  f"{report.max_difference:.2e}, same classes: {'yes' if report.same_classes else 'no'}")
    console.print(f"Predict with: automl-tl predict {escape(str(report.directory))} IMAGE_OR_FOLDER [--top 3] [--json]", highlight=False)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import image_paths, load_export, predict_files

    if args.top < 1:
        raise UserError(f"--top {args.top}: give how many of the most likely classes to show for each image (at least 1).")
    plugins = _plugins(args)
    loaded = load_export(plugins, Path(args.model_dir), trusted=args.trust_model)
    results = predict_files(loaded, image_paths(args.paths), top=args.top)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for result in results:
        if "error" in result:
            console.print(f"{escape(result['path'])}: [red]unreadable[/] ({escape(str(result['error']))})", highlight=False)
        else:
            tops = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in result["top"])
            console.print(f"{escape(result['path'])}: {escape(tops)}", highlight=False)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data.loader import describe_skipped, load_table
    from .evaluate import evaluate_export
    from .predict import load_export

    plugins = _plugins(args)
    loaded = load_export(plugins, Path(args.model_dir), trusted=args.trust_model)
    location = _data_location(args.data)
    splits = plugins.dataset_for(location).discover(location)
    table = load_table(splits, loaded.preprocessing.image_size, show_progress=True, rule=loaded.preprocessing.rule)
    if table.skipped:
        err_console.print(f"[yellow]warning[/] {escape(describe_skipped(table.skipped))} They are not counted.",
                          highlight=False)
    result = evaluate_export(loaded, table, args.split)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        console.print(f"{args.split} split: {result['images']} images, accuracy {result['accuracy']:.4f}, "
                      f"balanced accuracy {result['balanced_accuracy']:.4f}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .data.images import DEFAULT_MAX_PIXELS
    from .data.loader import load_table
    from .export import fetch_remote_artifacts
    from .fingerprint import FINGERPRINT_ATTR
    from .leaderboard import ranked_trials
    from .report import write_report
    from .report.best_model import evaluate_best
    from .study import SETTINGS_ATTR, study_rule_of

    study = _load_study(args.name, args.storage)
    plugins = _plugins(args)
    warnings_: list[str] = []

    def evaluate() -> Any:
        ranked = ranked_trials(study)
        if not ranked:
            raise UserError("the study has no completed trial yet")
        local, remote = _study_artifacts(study, args.artifacts)
        if remote:
            fetch_remote_artifacts(remote, local, ranked[0].number)
        location = args.data or study.user_attrs.get("data_location")
        if not location:
            raise UserError("the study does not record where its data is; pass --data")
        splits = plugins.dataset_for(location).discover(location)
        max_pixels = int(study.user_attrs.get(SETTINGS_ATTR, {}).get("max_pixels", DEFAULT_MAX_PIXELS))
        table = load_table(splits, int(study.user_attrs.get("image_size", 48)), max_pixels=max_pixels,
                           show_progress=False, rule=study_rule_of(study.user_attrs))
        recorded = (study.user_attrs.get(FINGERPRINT_ATTR) or {}).get("data_manifest")
        if recorded and table.manifest_hash != recorded:
            warnings_.append(
                f"The data in {splits.source} is not the data study {args.name!r} was searched on: images were "
                f"added, removed, renamed, relabelled or edited since. The best model's test results in this report "
                f"describe that data, not the study's own test split, and its test images may include images the "
                f"model was trained on. Pass --data with the study's original data to report on it."
            )
        return evaluate_best(plugins, study, ranked[0].number, local, table)

    output = Path(args.output).expanduser().resolve()
    with console.status("Drawing the report and evaluating the best model on the test split ..."):
        write_report(study, output, evaluate, warnings_)
    for text in warnings_:
        err_console.print(f"[yellow]warning[/] {escape(text)}", highlight=False)
    console.print(f"Report of study {args.name!r} written to [bold]{escape(str(output))}[/] (one self-contained HTML file)")
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    plugins = _plugins(args)
    rows = []
    for name in plugins.backbones.names(args.pattern):
        spec = plugins.backbone(name)
        if args.framework and spec.framework != args.framework:
            continue
        rows.append({"name": name, "framework": spec.framework, "blocks": len(spec.blocks), "feature_dim": spec.feature_dim,
                     "pretrained": spec.pretrained, "weights_available": spec.weights_available() if spec.pretrained else None,
                     "weights": spec.weights.source if spec.weights else "none (trained from scratch)",
                     "plugin": plugins.backbones.owner(name)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="Backbones")
    for column in ("name", "framework", "blocks", "features", "weights here", "weights", "plugin"):
        table.add_column(column)
    for row in rows:
        here = "from scratch" if not row["pretrained"] else ("[green]yes[/]" if row["weights_available"] else "[red]no[/]")
        table.add_row(escape(row["name"]), escape(row["framework"]), str(row["blocks"]), str(row["feature_dim"]), here,
                      escape(row["weights"]), escape(str(row["plugin"])))
    console.print(table)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import plugin_rows

    rows = plugin_rows(_plugins(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="Plugins")
    for column in ("name", "source", "frameworks", "backbones", "datasets"):
        table.add_column(column)
    for row in rows:
        source = f"[red]failed: {escape(row['error'])}[/]" if row.get("error") else escape(row["source"])
        backbones = f"{len(row['backbones'])}: " + ", ".join(row["backbones"][:4]) if row["backbones"] else ""
        table.add_row(escape(row["name"]), source, escape(", ".join(row["frameworks"])), escape(backbones),
                      escape(", ".join(row["datasets"])))
    console.print(table)
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    from .data.sample import default_sample_dir, write_sample

    target = Path(args.directory).expanduser().resolve() if args.directory else default_sample_dir()
    path = write_sample(target)
    console.print(f"Sample data set (Animal-MNIST, 10 classes) is in {escape(str(path))}")
    return 0


# -- parser ---------------------------------------------------------------------------------
def _add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", metavar="FILE.py", help="load a single-file plugin (repeatable)")


def _add_trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-model", action="store_true",
                        help="also load formats that can run code when loaded (torchscript, savedmodel): only for an "
                             "export you made yourself or whose maker you trust")


def build_parser() -> argparse.ArgumentParser:
    from .types import RESIZE_MODES

    parser = argparse.ArgumentParser(prog="automl-tl", description="Search the transfer-learning recipe for an image folder.")
    parser.add_argument("--version", action="version", version=f"automl-tl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    search = sub.add_parser("search", help="run or resume a study")
    search.add_argument("data", nargs="?", metavar="DATA", help="folder with one sub-folder per class, or a CSV manifest (default: the bundled sample)")
    search.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="the study's total of finished trials (default %(default)s)")
    search.add_argument("--study", help="study name (default: the data folder's name)")
    search.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: sqlite:///studies/NAME.db)")
    search.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX", help="where trial weights are kept: a (shared) folder, or an S3-compatible bucket (default: studies/)")
    search.add_argument("--framework", default="torch", help="torch, keras or all (default %(default)s)")
    search.add_argument("--backbones", metavar="PATTERNS", help="comma-separated name patterns, e.g. 'mobilenet*,resnet18'")
    search.add_argument("--epochs", type=auto_or_int("--epochs"), default=DEFAULT_EPOCHS, metavar="auto|N",
                        help="the most epochs a trial trains, both phases together; auto: from 4 (large data) to 12 "
                             "(small data), and the pruner stops trials that do not earn them (default %(default)s)")
    search.add_argument("--image-size", type=auto_or_int("--image-size"), default=DEFAULT_IMAGE_SIZE, metavar="auto|PX",
                        help="square input size in pixels, or auto: from the images' typical size, the backbones' "
                             "native size and --timeout (default %(default)s)")
    search.add_argument("--resize", choices=RESIZE_MODES, default=None, dest="resize_given",
                        help="how images become squares: crop (keep the aspect ratio, centre crop; default), pad "
                             "(keep it, pad with white) or stretch")
    search.add_argument("--timeout", type=float, metavar="SEC", help="stop starting trials after this many seconds")
    search.add_argument("--seed", type=int, default=0, help="sampler and training seed (default %(default)s)")
    search.add_argument("--pruner", default=DEFAULT_PRUNER, choices=list(PRUNERS),
                        help="halving: successive halving over epochs with a rung at the phase switch (default %(default)s)")
    search.add_argument("--truncation", action=argparse.BooleanOptionalAction, default=True,
                        help="search the cut point: the head may read earlier blocks' features (default on)")
    search.add_argument("--smart-start", action=argparse.BooleanOptionalAction, default=True,
                        help="start a new study with trials chosen from a quick profile of the data (default on)")
    search.add_argument("--max-pixels", type=int, default=40_000_000, help="reject images larger than this many pixels")
    search.add_argument("--workers", type=int, metavar="N",
                        help="start N worker processes on the study (needs PostgreSQL when N > 1); 0 prepares the study for workers started elsewhere")
    search.add_argument("--heartbeat", type=int, default=DEFAULT_HEARTBEAT_S, metavar="SEC",
                        help="a new study's heartbeat: a worker silent for 3 heartbeats has its trial retried elsewhere (default %(default)s)")
    _add_plugin_option(search)
    search.set_defaults(func=cmd_search)

    worker = sub.add_parser("worker", help="join a prepared study and run its trials until the budget is met")
    worker.add_argument("--study", required=True, help="the study's name")
    worker.add_argument("--storage", metavar="URL", help="the study's storage (or set AUTOML_TL_STORAGE, which keeps the password out of the process list)")
    worker.add_argument("--data", metavar="DATA", help="where this machine has the data (default: where the study was created)")
    worker.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX", help="the shared artifacts (default: where the study records them)")
    worker.add_argument("--timeout", type=float, metavar="SEC", help="stop taking trials after this many seconds")
    worker.add_argument("--max-pixels", type=int, help="reject images larger than this many pixels (default: the study's)")
    worker.add_argument("--lines", action="store_true", help="print one line per trial instead of live bars")
    _add_plugin_option(worker)
    worker.set_defaults(func=cmd_worker)

    show = sub.add_parser("show", help="summarise a study")
    show.add_argument("name")
    show.add_argument("--storage", metavar="URL")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    studies = sub.add_parser("studies", help="list studies")
    studies.add_argument("--storage", metavar="URL")
    studies.add_argument("--json", action="store_true")
    studies.set_defaults(func=cmd_studies)

    export = sub.add_parser("export", help="export a trained trial (the best by default)")
    export.add_argument("name")
    export.add_argument("--format", required=True, choices=["torchscript", "onnx", "keras", "savedmodel"])
    export.add_argument("-o", "--output", required=True, metavar="DIR")
    export.add_argument("--trial", type=int)
    export.add_argument("--overwrite", action="store_true", help="replace an earlier automl-tl export in the same folder")
    export.add_argument("--storage", metavar="URL")
    export.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX")
    _add_plugin_option(export)
    export.set_defaults(func=cmd_export)

    predict = sub.add_parser("predict", help="classify images with an exported model")
    predict.add_argument("model_dir", metavar="MODEL_DIR")
    predict.add_argument("paths", nargs="+", metavar="PATH")
    predict.add_argument("--top", type=int, default=3)
    predict.add_argument("--json", action="store_true")
    _add_trust_option(predict)
    _add_plugin_option(predict)
    predict.set_defaults(func=cmd_predict)

    evaluate = sub.add_parser("evaluate", help="accuracy of an exported model on a split of a data set")
    evaluate.add_argument("model_dir", metavar="MODEL_DIR")
    evaluate.add_argument("data", nargs="?", metavar="DATA")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"])
    evaluate.add_argument("--json", action="store_true")
    _add_trust_option(evaluate)
    _add_plugin_option(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    report = sub.add_parser("report", help="write a self-contained HTML report of a study")
    report.add_argument("name")
    report.add_argument("-o", "--output", default="report.html", metavar="FILE.html")
    report.add_argument("--storage", metavar="URL")
    report.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX")
    report.add_argument("--data", metavar="DATA", help="where the data is now, if it moved since the search")
    _add_plugin_option(report)
    report.set_defaults(func=cmd_report)

    backbones = sub.add_parser("backbones", help="list backbones and whether their weights are here")
    backbones.add_argument("pattern", nargs="?")
    backbones.add_argument("--framework")
    backbones.add_argument("--json", action="store_true")
    _add_plugin_option(backbones)
    backbones.set_defaults(func=cmd_backbones)

    plugins = sub.add_parser("plugins", help="list loaded plugins")
    plugins.add_argument("--json", action="store_true")
    _add_plugin_option(plugins)
    plugins.set_defaults(func=cmd_plugins)

    sample = sub.add_parser("sample-data", help="write the bundled sample as folder-per-class PNGs")
    sample.add_argument("directory", nargs="?", metavar="DIR")
    sample.set_defaults(func=cmd_sample_data)
    return parser


# OSErrors that come from the user's machine rather than from a bug: the last-resort net in main().
_ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                       errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG, errno.EMFILE, errno.ENFILE}


def describe_os_error(exc: OSError) -> str:
    """One paragraph for an OSError of the user's environment: the file, the error, what to do."""
    files = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    where = f"{files}: " if files else ""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        where += "a file is in the way where a folder is needed: "
    return (f"{where}{exc.strerror or exc}. Check that the file or folder named here is the one you meant, that "
            f"you may write to it, and that its disk has free space; then run the command again.")


def _without_secrets(message: str, args: argparse.Namespace) -> str:
    """A last guard: no piece of the storage URL's password in an error, whatever path or part of the
    URL the message quotes (a SQLite path made from a malformed URL holds the password too)."""
    from .storage import STORAGE_ENV, scrub

    for url in (getattr(args, "storage", None), os.environ.get(STORAGE_ENV)):
        if url:
            message = scrub(message, url)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        with interrupts_as_keyboard_interrupt(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
            return handler(args)
    except UserError as exc:
        err_console.print(f"[bold red]Error:[/] {escape(_without_secrets(str(exc), args))}", highlight=False)
        return 2
    except OSError as exc:  # a last resort: the specific cases have their own messages
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise
        err_console.print(f"[bold red]Error:[/] {escape(_without_secrets(describe_os_error(exc), args))}", highlight=False)
        return 2
    except KeyboardInterrupt as exc:
        detail = f" {exc.detail}" if isinstance(exc, StoppedTrial) else ""
        err_console.print(f"Stopped.{escape(detail)} Finished trials are saved; run the same command again to resume.",
                          highlight=False)
        return 130


def entry_point() -> None:
    sys.exit(main())
