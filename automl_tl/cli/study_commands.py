"""``show``, ``studies`` and ``report``: what a study holds, as text, JSON or one HTML page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from automl_tl.cli.common import command_plugins, console, err_console, load_study, resolved
from automl_tl.errors import UserError


def cmd_show(args: argparse.Namespace) -> int:
    from automl_tl.report.ensemble_summary import ensemble_text, study_ensemble
    from automl_tl.report.leaderboard import leaderboard_table, study_summary
    from automl_tl.search.scoring import study_cv_folds, value_name, value_note

    study = load_study(args.name, args.storage)
    summary = study_summary(study)
    ensemble, why_not = study_ensemble(study)
    summary["ensemble"] = ensemble.to_dict() if ensemble is not None else {"none": why_not}
    if args.plot:
        write_latency_plot(study, resolved(args.plot))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    counts = ", ".join(f"{k.lower()} {v}" for k, v in summary["counts"].items() if v)
    console.print(f"[bold]Study {escape(repr(args.name))}[/]: {counts or 'no trials'}")
    shown = summary["input"]
    if shown["image_size"] is not None:
        console.print(f"Input: {shown['image_size']} px ({escape(str(shown['why']))}); {escape(shown['rule'])}")
    best = summary["best_trial"]
    folds = study_cv_folds(study.user_attrs)
    if value_note(folds):
        console.print(escape(value_note(folds)), highlight=False)
    if best:
        attrs = best["user_attrs"]
        console.print(f"Best trial {best['number']} (the chosen model): {value_name(folds)} {best['value']:.4f}, "
                      f"balanced {value_name(folds)} {attrs.get('val_balanced_accuracy', float('nan')):.4f}, "
                      f"test acc {attrs.get('test_accuracy', float('nan')):.4f}")
        console.print("Best params: " + escape(", ".join(f"{k}={v}" for k, v in best["params"].items())))
    console.print(leaderboard_table(study, test_per_trial=args.test_per_trial, chosen_caption=False))
    if not args.test_per_trial:
        console.print("Test accuracy is shown for the chosen model only (--test-per-trial shows every trial's).",
                      style="dim", highlight=False)
    if ensemble is not None:
        console.print(escape(ensemble_text(ensemble)), highlight=False)
    show_latency(study, summary["latency"])
    if args.plot:
        console.print(f"Accuracy against latency drawn into {escape(str(resolved(args.plot)))}", highlight=False)
    for number, reason in summary["smart_start"].items():
        console.print(f"[cyan]smart start[/] trial {number}: {escape(reason)}")
    for failure in summary["failures"][-5:]:
        console.print(f"[red]failed[/] trial {failure['trial']}: {escape(str(failure['reason']))}")
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


def write_latency_plot(study: Any, path: Path) -> None:
    """``show --plot FILE``: validation accuracy against batch-1 latency, the Pareto front marked."""
    from automl_tl.report.figures import accuracy_latency_figure, save_figure

    figure = accuracy_latency_figure(study)
    if figure is None:
        raise UserError(f"--plot {path}: no completed trial of study {study.study_name!r} has a measured latency, so "
                        f"there is nothing to draw. Trials record their latency when their framework can measure it "
                        f"(torch and keras do); run more trials with `automl-tl search`, or leave --plot out.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_figure(figure, path)
    except (OSError, ValueError) as exc:  # matplotlib raises ValueError for an extension it cannot write
        raise UserError(f"--plot {path}: the plot cannot be written ({exc}). Name a file ending in .png, .svg or "
                        f".pdf in a folder you can write.") from None


def cmd_studies(args: argparse.Namespace) -> int:
    import optuna

    from automl_tl.search.lifecycle import quiet_optuna
    from automl_tl.storage.urls import explicit_storage, missing_database, open_storage, redact, studies_dir
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
    table = Table(title="Studies")
    for column in ("study", "trials", "best val acc", "best backbone", "storage"):
        table.add_column(column)
    for row in rows:
        table.add_row(escape(str(row["study"])), str(row["trials"]),
                      f"{row['best_value']:.4f}" if row["best_value"] is not None else "-",
                      escape(str(row["best_backbone"] or "-")), escape(str(row["storage"])))
    console.print(table)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from automl_tl.cli.plugin_files import check_study_backbones
    from automl_tl.report import write_report
    from automl_tl.report.best_model import BestModelResults, evaluate_study_best
    from automl_tl.report.ensemble_summary import ensemble_section, study_ensemble
    from automl_tl.search.budget import ranked_trials

    study = load_study(args.name, args.storage)
    plugins = command_plugins(args)
    warnings: list[str] = []
    output = resolved(args.output)

    def evaluate() -> BestModelResults:
        ranked = ranked_trials(study)
        needed = [ranked[0].params.get("backbone", "")] if ranked else []
        warnings.extend(check_study_backbones(plugins, study.user_attrs, needed, args.plugin or []))
        return evaluate_study_best(plugins, study, args.artifacts, args.data, warnings)

    with console.status("Drawing the report and evaluating the best model on the test split ..."):
        ensemble, why_not = study_ensemble(study, args.artifacts)
        write_report(study, output, evaluate, warnings, test_per_trial=args.test_per_trial,
                     ensemble_html=ensemble_section(ensemble, why_not))
    for text in warnings:
        err_console.print(f"[yellow]warning[/] {escape(text)}", highlight=False)
    console.print(f"Report of study {args.name!r} written to [bold]{escape(str(output))}[/] (one self-contained HTML file)")
    return 0
