"""``show``, ``studies`` and ``report``: what a study holds, as text, JSON or one HTML page."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table

from automl_tl.cli.common import command_plugins, console, err_console, load_study, resolved


def cmd_show(args: argparse.Namespace) -> int:
    from automl_tl.report.leaderboard import leaderboard_table, study_summary

    study = load_study(args.name, args.storage)
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
        console.print(f"Best trial {best['number']} (the chosen model): val acc {best['value']:.4f}, "
                      f"balanced val acc {attrs.get('val_balanced_accuracy', float('nan')):.4f}, "
                      f"test acc {attrs.get('test_accuracy', float('nan')):.4f}")
        console.print("Best params: " + escape(", ".join(f"{k}={v}" for k, v in best["params"].items())))
    console.print(leaderboard_table(study, test_per_trial=args.test_per_trial, chosen_caption=False))
    if not args.test_per_trial:
        console.print("Test accuracy is shown for the chosen model only (--test-per-trial shows every trial's).",
                      style="dim", highlight=False)
    for number, reason in summary["smart_start"].items():
        console.print(f"[cyan]smart start[/] trial {number}: {escape(reason)}")
    for failure in summary["failures"][-5:]:
        console.print(f"[red]failed[/] trial {failure['trial']}: {escape(str(failure['reason']))}")
    return 0


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
        write_report(study, output, evaluate, warnings, test_per_trial=args.test_per_trial)
    for text in warnings:
        err_console.print(f"[yellow]warning[/] {escape(text)}", highlight=False)
    console.print(f"Report of study {args.name!r} written to [bold]{escape(str(output))}[/] (one self-contained HTML file)")
    return 0
