"""The audit's counts past its 200-entry lists (the search's warning, ``--strict``, the report's headings) and
the rule for small images: a quarter of the size searched."""

from __future__ import annotations

import json
import re

import numpy as np

from automl_tl.audit.image_checks import SMALL_FRACTION, small_images
from automl_tl.audit.inputs import AuditInput
from automl_tl.audit.perceptual import THUMB_SIDE, turned_fingerprints
from automl_tl.audit.report import MAX_LISTED, AuditReport
from automl_tl.audit.run import run_audit
from automl_tl.audit.summary import refuse_leaks, warning_paragraph
from automl_tl.errors import UserError
from automl_tl.report.audit_section import audit_section

LEAKS, ACROSS, WITHIN = 150, 100, 60  # 310 groups of two: the lists keep the 150 leaks and 50 across classes


def many_groups() -> AuditInput:
    """Pairs of identical files: LEAKS across train and test, ACROSS under two labels, WITHIN in one class;
    each pair a distinct random picture (so no two pairs are near-duplicates of each other)."""
    files, classes, splits, content = [], [], [], []
    for n in range(LEAKS + ACROSS + WITHIN):
        pair = (("a", "train"), ("a", "test")) if n < LEAKS else (("a", "train"), ("b", "train")) if n < LEAKS + ACROSS \
            else (("a", "train"), ("a", "train"))
        for k, (label, split) in enumerate(pair):
            files.append(f"{label}/p{n}_{k}.png")
            classes.append(label)
            splits.append(split)
            content.append(f"hash{n}")
    pictures = np.random.default_rng(0).integers(0, 256, (LEAKS + ACROSS + WITHIN, THUMB_SIDE, THUMB_SIDE), dtype=np.uint8)
    return AuditInput(files, classes, splits, content, [(64, 64)] * len(files),
                      turned_fingerprints(np.repeat(pictures, 2, axis=0)), [], ("a", "b"))


def test_past_the_cut_the_warning_and_strict_count_every_group_by_its_kind():
    report = AuditReport.from_dict(json.loads(json.dumps(run_audit(many_groups(), 224).to_dict())))  # as a study keeps it
    assert len(report.exact_duplicates) == MAX_LISTED and report.total("exact_duplicates") == LEAKS + ACROSS + WITHIN
    assert not report.near_duplicates
    assert [report.group_total(k) for k in ("leak", "across_classes", "within_class")] == [LEAKS, ACROSS, WITHIN]
    said = warning_paragraph(report, "DATA")
    assert f"{LEAKS} duplicate groups span the train/val/test splits" in said, said
    assert f"{ACROSS} duplicate groups have conflicting labels" in said, said
    assert f"{WITHIN} more groups of duplicates within a class" in said, said
    try:
        refuse_leaks(report, "DATA")
    except UserError as refused:
        text = str(refused)
    else:
        raise AssertionError("--strict let a leak through")
    assert f"{LEAKS} groups of copies span more than one of" in text and f"and {LEAKS - 5} more" in text, text
    assert "images appear" not in text


def test_the_report_headings_give_the_true_totals_and_say_when_a_list_was_cut():
    html = audit_section(run_audit(many_groups(), 224).to_dict(), None, 10_000)
    headings = re.findall(r"<h3>([^<]*)</h3>", html)
    assert f"Leaks between splits ({LEAKS})" in headings, headings
    assert f"Duplicates across classes ({ACROSS}; the first {MAX_LISTED - LEAKS} listed)" in headings, headings
    assert f"Duplicates within a class ({WITHIN}; none listed)" in headings, headings
    assert html.count("automl-tl audit DATA</code> names every one") == 2
    small = {**run_audit(many_groups(), 224).to_dict()}
    small["findings"]["small_images"] = [{"file": f"a/s{i}.png", "width": 16, "height": 16} for i in range(MAX_LISTED)]
    small["totals"]["small_images"] = 300
    assert f"Small images (300; the first {MAX_LISTED} listed)" in re.findall(r"<h3>([^<]*)</h3>", audit_section(small, None, 10_000))


def test_small_means_under_a_quarter_of_the_size_searched_and_the_warning_says_so():
    assert SMALL_FRACTION == 0.25
    files = ["thumb.png", "icon.png", "edge.png", "stamp.png", "wide.png"]
    sizes = [(16, 16), (55, 80), (56, 56), (100, 90), (300, 40)]
    flagged = [s.file for s in small_images(files, sizes, 224)]
    assert flagged == ["thumb.png", "wide.png", "icon.png"], flagged  # smallest shorter side first; 56 is not under 56
    report = AuditReport(images=5, image_size=224, small_images=small_images(files, sizes, 224))
    said = warning_paragraph(report, "DATA")
    assert "3 images are under a quarter of the 224 px searched (56 px) on the shorter side" in said, said
    assert "thumb.png" not in said  # by count only; `automl-tl audit` names them
