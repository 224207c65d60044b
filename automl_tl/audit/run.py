"""Run every check of the data audit over one ``AuditInput`` and keep the findings in an ``AuditReport``."""

from __future__ import annotations

import time
from collections.abc import Sequence

from automl_tl.audit.groups import KIND_ORDER, exact_duplicates
from automl_tl.audit.image_checks import extreme_aspect, imbalance, small_images
from automl_tl.audit.inputs import AuditInput, readable_sizes
from automl_tl.audit.perceptual import MAX_DISTANCE, near_duplicates
from automl_tl.audit.report import AuditReport, LabelIssue, Unreadable, capped, group_total_key


def run_audit(found: AuditInput, image_size: int | None, started: float | None = None,
              max_distance: int = MAX_DISTANCE) -> AuditReport:
    """Every finding about ``found``; ``image_size`` is the chosen input size (None: none chosen yet), and
    ``started`` the ``time.perf_counter()`` the audit began at (its reading of the files included)."""
    began = time.perf_counter() if started is None else started
    exact = exact_duplicates(found.content, found.files, found.classes, found.splits)
    near = near_duplicates(found.prints, found.content, found.files, found.classes, found.splits, max_distance)
    files, sizes = readable_sizes(found)
    small = small_images(files, sizes, image_size)
    oblong = extreme_aspect(files, sizes)
    unreadable = [Unreadable(f, r) for f, r in found.unreadable]
    totals = {"exact_duplicates": len(exact), "near_duplicates": len(near), "small_images": len(small),
              "extreme_aspect": len(oblong), "unreadable": len(unreadable),
              **{group_total_key(kind): sum(1 for g in (*exact, *near) if g.kind == kind) for kind in KIND_ORDER}}
    return AuditReport(
        images=found.images, image_size=image_size, exact_duplicates=capped(exact), near_duplicates=capped(near),
        small_images=capped(small), extreme_aspect=capped(oblong), unreadable=capped(unreadable),
        imbalance=imbalance(found.classes, found.class_names), seconds=time.perf_counter() - began, totals=totals)


def with_label_issues(report: AuditReport, issues: Sequence[LabelIssue]) -> AuditReport:
    """``report`` with ``issues`` (most likely first) as its label issues, cut and counted as its lists are."""
    report.label_issues = capped(list(issues))
    report.totals = {**report.totals, "label_issues": len(issues)}
    return report
