"""``audit``, and the audit a search runs on its data before its first trial and after its last.

``automl-tl audit DATA`` reads every image once and writes nothing (no study, no decoded-image entry);
``--labels STUDY`` lists the likely label errors a cross-validated search found. A search audits the
image table it has just read (no file is decoded again), prints one paragraph when something is found,
keeps the report on the study, and after a cross-validated search adds the likely label errors of its
best trial's out-of-fold probabilities.
"""

from __future__ import annotations

import argparse
import json
import time
import zipfile
import zlib
from dataclasses import asdict
from typing import Any

from rich.table import Table

from automl_tl.api.common import command_plugins, console, data_location, err_console, load_study
from automl_tl.audit.report import AuditReport, DuplicateGroup, LabelIssue
from automl_tl.errors import UserError
from automl_tl.runtime.shown_text import console_text
from automl_tl.study_record import DATA_AUDIT_ATTR, study_cv_folds

SHOWN_LABEL_ISSUES = 10  # likely label errors ``show`` lists


def cmd_audit(args: argparse.Namespace) -> int:
    """``audit``: the findings about DATA (or, with --labels, a study's likely label errors)."""
    from automl_tl.audit.inputs import from_files
    from automl_tl.audit.run import run_audit

    if args.labels:
        return _show_study_labels(args)
    if not args.data:
        raise UserError("audit needs DATA: a folder with one sub-folder per class, or a CSV manifest "
                        "(or --labels STUDY for the label errors a cross-validated search found).")
    if args.image_size is not None and not 16 <= args.image_size <= 1024:
        raise UserError(f"--image-size {args.image_size}: give the size the search uses, between 16 and 1024 pixels.")
    started = time.perf_counter()
    splits = command_plugins(args).discover(data_location(args.data, "audit"))
    found = from_files(splits, args.max_pixels, show_progress=not args.json)
    report = run_audit(found, args.image_size, started)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print_report(report)
    return 0


def print_report(report: AuditReport) -> None:
    """A table per kind of finding, each file named, then one summary line."""
    duplicates = [("Exact duplicates", report.exact_duplicates, "exact_duplicates"),
                  ("Near-duplicates", report.near_duplicates, "near_duplicates")]
    for title, groups, kind in duplicates:
        if groups:
            console.print(_group_table(title, groups, report.total(kind)))
    if report.small_images:
        table = _table("Small images", report.total("small_images"), len(report.small_images), "file", "width x height")
        for small in report.small_images:
            table.add_row(console_text(small.file), f"{small.width} x {small.height}")
        console.print(table)
    if report.extreme_aspect:
        table = _table("Extreme aspect ratios", report.total("extreme_aspect"), len(report.extreme_aspect), "file",
                       "width x height", "ratio")
        for oblong in report.extreme_aspect:
            table.add_row(console_text(oblong.file), f"{oblong.width} x {oblong.height}", f"{oblong.ratio:g}:1")
        console.print(table)
    if report.unreadable:
        table = _table("Unreadable files", report.total("unreadable"), len(report.unreadable), "file", "reason")
        for bad in report.unreadable:
            table.add_row(console_text(bad.file), console_text(bad.reason))
        console.print(table)
    if report.imbalance.flagged:
        table = _table("Class imbalance", len(report.imbalance.counts), len(report.imbalance.counts), "class", "images")
        for name, count in sorted(report.imbalance.counts.items(), key=lambda item: -item[1]):
            table.add_row(console_text(name), str(count))
        console.print(table)
    if report.label_issues:
        console.print(label_table(report.label_issues, report.total("label_issues")))
    console.print(summary_line(report), highlight=False)


def summary_line(report: AuditReport) -> str:
    """One line: how many images, what was found of each kind, and the time."""
    counts = (f"{report.total('exact_duplicates')} exact and {report.total('near_duplicates')} near-duplicate groups "
              f"({report.group_total('leak')} across splits), {report.total('small_images')} small, "
              f"{report.total('extreme_aspect')} extreme aspect ratios, {report.total('unreadable')} unreadable; "
              f"largest/smallest class {report.imbalance.ratio:g}{' (flagged)' if report.imbalance.flagged else ''}")
    return f"[bold]Audit[/] {report.images} images: {counts}. {report.seconds:.1f}s."


def _table(title: str, total: int, shown: int, *columns: str) -> Table:
    cut = f" (the first {shown} of {total})" if total > shown else ""
    table = Table(title=f"{title}{cut}", title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _group_table(title: str, groups: list[DuplicateGroup], total: int) -> Table:
    near = any(g.distance is not None for g in groups)
    table = _table(title, total, len(groups), "kind", *(["bits apart"] if near else []), "files (class, split)")
    for group in groups:
        files = "\n".join(console_text(f"{f} ({c}, {s})") for f, c, s in zip(group.files, group.classes, group.splits))
        table.add_row(console_text(group.kind.replace("_", " ")), *([str(group.distance)] if near else []), files)
    return table


def label_table(issues: list[LabelIssue], total: int) -> Table:
    """The likely label errors, most likely first: the file, its label and the class the model suggests."""
    table = _table("Likely label errors (confident learning on out-of-fold probabilities)", total, len(issues),
                   "file", "given", "p(given)", "suggested", "p(suggested)")
    for issue in issues:
        table.add_row(console_text(issue.file), console_text(issue.given), f"{issue.given_probability:.3f}",
                      console_text(issue.suggested), f"{issue.suggested_probability:.3f}")
    return table


def stored_audit(study: Any) -> AuditReport | None:
    """The audit the study's last search kept; None when it kept none."""
    kept = study.user_attrs.get(DATA_AUDIT_ATTR)
    return AuditReport.from_dict(kept) if isinstance(kept, dict) else None


def _show_study_labels(args: argparse.Namespace) -> int:
    from automl_tl.tuning.scoring import MIN_FOLDS

    study = load_study(args.labels, args.storage)
    if study_cv_folds(study.user_attrs) < MIN_FOLDS:
        raise UserError(f"Study {args.labels!r} was not scored by cross-validation, so it has no out-of-fold "
                        f"probabilities to find label errors in. Search with --cv 5 (a new study) and run "
                        f"`automl-tl audit --labels STUDY` on it.")
    report = stored_audit(study)
    if report is None or not report.labels_checked():
        raise UserError(f"Study {args.labels!r} has no out-of-fold predictions of a completed trial recorded (its "
                        f"search ended before a trial completed, or ran on workers). Run `automl-tl search` on it "
                        f"again: a cross-validated search records them at its end.")
    if args.json:
        print(json.dumps([asdict(issue) for issue in report.label_issues], indent=2))
        return 0
    console.print(label_table(report.label_issues, report.total("label_issues")))
    console.print(f"{report.total('label_issues')} likely label errors in study {console_text(repr(args.labels))}.",
                  highlight=False)
    return 0


def audit_before_search(table: Any, splits: Any, image_size: int, data: str, strict: bool) -> AuditReport:
    """The audit of a search's image table: one warning paragraph when something is found, and with
    ``strict`` a ``UserError`` naming the files of any leak, before any trial."""
    from automl_tl.audit.inputs import from_table
    from automl_tl.audit.run import run_audit
    from automl_tl.audit.summary import refuse_leaks, warning_paragraph

    started = time.perf_counter()
    report = run_audit(from_table(table, splits), image_size, started)
    if strict:
        refuse_leaks(report, data)
    paragraph = warning_paragraph(report, data)
    if paragraph:
        err_console.print(f"[yellow]warning[/] {console_text(paragraph)}", highlight=False)
    return report


def keep_audit(study: Any, report: AuditReport) -> None:
    """Keep ``report`` on the study (``DATA_AUDIT_ATTR``)."""
    from automl_tl.runtime.interrupts import storage_write

    with storage_write():
        study.set_user_attr(DATA_AUDIT_ATTR, report.to_dict())


def record_label_issues(study: Any, table: Any, report: AuditReport, artifacts_option: str | None) -> None:
    """After a cross-validated search: the likely label errors from the best trial's out-of-fold probabilities,
    added to ``report`` and kept on the study. Nothing happens for a study without cross-validation or
    without a completed trial that kept its predictions."""
    from automl_tl.audit.labels import label_issues
    from automl_tl.audit.run import with_label_issues
    from automl_tl.storage.artifacts import study_artifact_places, trial_dir
    from automl_tl.storage.predictions import PREDICTIONS_FILE, load_predictions
    from automl_tl.tuning.budget import ranked_trials
    from automl_tl.tuning.scoring import MIN_FOLDS

    ranked = ranked_trials(study)
    if study_cv_folds(study.user_attrs) < MIN_FOLDS or not ranked:
        return
    directory = trial_dir(study_artifact_places(study, artifacts_option)[0], ranked[0].number)
    problem: str | None = None
    try:
        kept = load_predictions(directory)
    except (UserError, zipfile.BadZipFile, zlib.error, EOFError):  # np.load raises these on a damaged file
        kept, problem = None, "the file cannot be read"
    else:
        problem = predictions_mismatch(kept["val"], table) if kept and "val" in kept else None
    if problem is not None:
        err_console.print(f"[yellow]note[/] Likely label errors were not looked for: the out-of-fold predictions of "
                          f"trial {ranked[0].number} ({console_text(str(directory / PREDICTIONS_FILE))}) do not fit "
                          f"this search's images ({console_text(problem)}).", highlight=False)
        return
    if not kept or "val" not in kept:
        return
    oof = kept["val"]
    files = [table.relpaths[int(row)] for row in oof.index]
    keep_audit(study, with_label_issues(report, label_issues(oof.probabilities, oof.labels, files, table.class_names)))


def predictions_mismatch(oof: Any, table: Any) -> str | None:
    """Why the kept out-of-fold predictions ``oof`` (a ``SplitPredictions``) cannot be the search's own on
    ``table`` (a row out of range, a label that is not the row's, a column count that is not the number of
    classes); None when they fit."""
    import numpy as np

    rows, classes = len(table.relpaths), len(table.class_names)
    index = np.asarray(oof.index)
    if oof.probabilities.shape[1] != classes:
        return f"{oof.probabilities.shape[1]} probability columns for {classes} classes"
    if len(index) and (index.min() < 0 or index.max() >= rows):
        return f"an image row outside 0 to {rows - 1}"
    if not np.array_equal(np.asarray(oof.labels), np.asarray(table.labels)[index]):
        return "labels that are not those of the images"
    return None


def show_label_issues(study: Any) -> None:
    """``show``: the top likely label errors the study's last cross-validated search found, if any."""
    report = stored_audit(study)
    if report is None or not report.label_issues:
        return
    console.print(label_table(report.label_issues[:SHOWN_LABEL_ISSUES], report.total("label_issues")))
    console.print(f"`automl-tl audit --labels {console_text(study.study_name)}` lists all "
                  f"{report.total('label_issues')}.", highlight=False)
