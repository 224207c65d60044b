"""``show``, ``studies`` and ``report``: what a study holds, as text, JSON or one HTML page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from automl_tl.api.audit_commands import show_label_issues
from automl_tl.api.common import command_plugins, console, err_console, load_study
from automl_tl.errors import UserError
from automl_tl.runtime.owned_files import output_path
from automl_tl.runtime.shown_text import console_text
from automl_tl.study_record import TEST_ACCURACY_ATTR, VAL_BALANCED_ATTR, study_cv_folds


def cmd_show(args: argparse.Namespace) -> int:
    from automl_tl.report.ensemble_summary import ensemble_text, study_ensemble
    from automl_tl.report.leaderboard import leaderboard_table, study_summary
    from automl_tl.study_record import TIME_SUMMARY_ATTR
    from automl_tl.tuning.scoring import SCORE, score_legend
    from automl_tl.tuning.time_summary import time_table

    study = load_study(args.name, args.storage)
    summary = study_summary(study)
    ensemble, why_not = study_ensemble(study)
    summary["ensemble"] = ensemble.to_dict() if ensemble is not None else {"none": why_not}
    plot_file = write_latency_plot(study, output_path(args.plot), args.overwrite) if args.plot else None
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    counts = ", ".join(f"{k.lower()} {v}" for k, v in summary["counts"].items() if v)
    console.print(f"[bold]Study {console_text(repr(args.name))}[/]: {counts or 'no trials'}")
    shown = summary["input"]
    if shown["image_size"] is not None:
        console.print(f"Input: {shown['image_size']} px ({console_text(str(shown['why']))}); {console_text(shown['rule'])}")
    best = summary["best_trial"]
    console.print(console_text(score_legend(study_cv_folds(study.user_attrs))), highlight=False)  # what "score" is
    if best:
        attrs = best["user_attrs"]
        console.print(f"Best trial {best['number']} (the chosen model): {SCORE} {best['value']:.4f} (balanced "
                      f"{attrs.get(VAL_BALANCED_ATTR, float('nan')):.4f}), "
                      f"test acc {attrs.get(TEST_ACCURACY_ATTR, float('nan')):.4f}")
        console.print("Best params: " + console_text(", ".join(f"{k}={v}" for k, v in best["params"].items())))
    console.print(leaderboard_table(study, test_per_trial=args.test_per_trial, chosen_caption=False, legend=False))
    if not args.test_per_trial:
        console.print("Test accuracy is shown for the chosen model only (--test-per-trial shows every trial's).",
                      style="dim", highlight=False)
    if ensemble is not None:
        console.print(console_text(ensemble_text(ensemble)), highlight=False)
    show_latency(study, summary["latency"])
    show_label_issues(study)
    if plot_file is not None:
        console.print(f"Accuracy against latency drawn into {console_text(str(plot_file))}", highlight=False)
    if isinstance(study.user_attrs.get(TIME_SUMMARY_ATTR), dict):  # recorded by the last search run
        console.print(time_table(study.user_attrs[TIME_SUMMARY_ATTR]))
    for number, reason in summary["smart_start"].items():
        console.print(f"[cyan]smart start[/] trial {number}: {console_text(reason)}")
    for failure in summary["failures"][-5:]:
        console.print(f"[red]failed[/] trial {failure['trial']}: {console_text(str(failure['reason']))}")
    return 0


def show_latency(study: Any, latency: dict[str, Any]) -> None:
    """The accuracy-latency Pareto front as a table, and the trials a latency limit kept from training."""
    from automl_tl.report.leaderboard import pareto_table

    table = pareto_table(study)
    if table is not None:
        console.print(table)
    if latency["too_slow"]:
        numbers = ", ".join(str(n) for n in latency["too_slow"][:20]) + (" ..." if len(latency["too_slow"]) > 20 else "")
        limit = latency["max_latency_ms"]
        console.print(f"[yellow]too slow[/] {len(latency['too_slow'])} trial(s) over the latency limit"
                      f"{f' (now {limit:g} ms)' if isinstance(limit, (int, float)) else ''} were not trained: {numbers}",
                      highlight=False)


def write_latency_plot(study: Any, path: Path, overwrite: bool) -> Path:
    """``show --plot FILE``: validation accuracy against batch-1 latency, the Pareto front marked; returns
    the file written (FILE, or FILE.png for a name without an extension)."""
    from automl_tl.report.figures import accuracy_latency_figure
    from automl_tl.report.plot_file import check_plot_target, write_plot

    check_plot_target(path, overwrite)  # a target it must not replace is refused before anything is drawn
    figure = accuracy_latency_figure(study)
    if figure is None:
        raise UserError(f"--plot {path}: no completed trial of study {study.study_name!r} has a measured latency, so "
                        f"there is nothing to draw. Trials record their latency when their framework can measure it "
                        f"(torch and keras do); run more trials with `automl-tl search`, or leave --plot out.")
    return write_plot(figure, path, overwrite)


def cmd_studies(args: argparse.Namespace) -> int:
    import optuna

    from automl_tl.runtime.fitted_table import FitColumn, FittedTable
    from automl_tl.storage.stored_attrs import quiet_optuna
    from automl_tl.storage.study_store import reading_store
    from automl_tl.storage.urls import explicit_storage, missing_database, open_storage, redact, store_name, studies_dir
    from automl_tl.tuning.scoring import SCORE, score_meaning
    quiet_optuna()
    chosen = explicit_storage(args.storage)
    missing = missing_database(chosen) if chosen else None  # opening it would create the file and its folders
    if missing is not None:
        raise missing
    urls = [chosen] if chosen else [f"sqlite:///{p}" for p in sorted(studies_dir().glob("*.db"))]
    rows = []
    for url in urls:
        try:
            storage = open_storage(url, read_only=True)
            with reading_store(store_name(url)):
                summaries = optuna.get_all_study_summaries(storage=storage, include_best_trial=True)
        except UserError as exc:  # one file of the folder that is not a study store: said, and the rest listed
            if chosen:
                raise
            err_console.print(f"[yellow]skipped[/] {console_text(str(exc))}", highlight=False)
            continue
        for summary in summaries:
            best = summary.best_trial
            rows.append({"study": summary.study_name, "storage": redact(url), "trials": summary.n_trials,
                         "best_value": best.value if best else None, "best_score": best.value if best else None,
                         "score_name": score_meaning(study_cv_folds(summary.user_attrs)),
                         "best_backbone": best.params.get("backbone") if best else None})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        console.print(f"No studies in {console_text(str(chosen and redact(chosen) or studies_dir()))}.")
        return 0
    table = FittedTable([FitColumn("study", numeric=False, justify="left"), FitColumn("trials"),
                         FitColumn(f"best {SCORE}"), FitColumn("best backbone", numeric=False, justify="left"),
                         FitColumn("storage", numeric=False, justify="left")], title="Studies",
                        caption=f"{SCORE}: validation accuracy, or cross-validated accuracy where the study "
                                f"cross-validates (studies --json: score_name)")
    for row in rows:
        table.add_row(console_text(str(row["study"])), str(row["trials"]),
                      f"{row['best_value']:.4f}" if row["best_value"] is not None else "-",
                      console_text(str(row["best_backbone"] or "-")), console_text(str(row["storage"])))
    console.print(table)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from automl_tl.api.plugin_files import check_study_backbones
    from automl_tl.report import write_report
    from automl_tl.report.best_model import BestModelResults, evaluate_study_best
    from automl_tl.report.ensemble_summary import ensemble_section, study_ensemble
    from automl_tl.tuning.budget import ranked_trials

    study = load_study(args.name, args.storage)
    plugins = command_plugins(args)
    warnings: list[str] = []
    output = output_path(args.output)

    def evaluate() -> BestModelResults:
        ranked = ranked_trials(study)
        needed = [ranked[0].params.get("backbone", "")] if ranked else []
        warnings.extend(check_study_backbones(plugins, study.user_attrs, needed, args.plugin or []))
        return evaluate_study_best(plugins, study, args.artifacts, args.data, warnings)

    with console.status("Drawing the report and evaluating the best model on the test split ..."):
        ensemble, why_not = study_ensemble(study, args.artifacts)
        write_report(study, output, evaluate, warnings, test_per_trial=args.test_per_trial,
                     ensemble_html=ensemble_section(ensemble, why_not), overwrite=args.overwrite,
                     data_location=args.data)
    for text in warnings:
        err_console.print(f"[yellow]warning[/] {console_text(text)}", highlight=False)
    console.print(f"Report of study {args.name!r} written to [bold]{console_text(str(output))}[/] (one self-contained HTML file)")
    return 0
