"""The data audit's checks on tiny synthetic folders: each finds what was planted and nothing on clean data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from automl_tl.audit.groups import exact_duplicates, group_kind
from automl_tl.audit.image_checks import MAX_IMBALANCE, imbalance
from automl_tl.audit.inputs import from_files
from automl_tl.audit.labels import label_issues
from automl_tl.audit.report import MAX_LISTED, AuditReport
from automl_tl.audit.run import run_audit, with_label_issues
from automl_tl.data.folder import FolderDataset
from tests.support.planted import clean_folder, name_in, save, smooth_image, split_of

SHAPE = {"images", "image_size", "findings", "label_issues", "seconds", "totals"}
FINDINGS = {"exact_duplicates", "near_duplicates", "small_images", "extreme_aspect", "unreadable", "imbalance"}


def audit(root: Path, image_size: int | None = 32) -> AuditReport:
    return run_audit(from_files(FolderDataset().discover(str(root)), show_progress=False), image_size)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_folder(tmp_path_factory.mktemp("clean") / "data")


def test_clean_data_has_no_findings(clean):
    report = audit(clean)
    assert report.images == 30
    assert not (report.exact_duplicates or report.near_duplicates or report.small_images or report.extreme_aspect
                or report.unreadable), report.to_dict()
    assert report.imbalance.ratio == 1.0 and not report.imbalance.flagged


def test_planted_faults_are_each_found_and_named(tmp_path):
    root = clean_folder(tmp_path / "data")
    original = root / "c0" / name_in("c0", "train", "img0")  # written by clean_folder: image seed 0, in train
    leak = name_in("c0", "test", "copy")
    (root / "c0" / leak).write_bytes(original.read_bytes())  # an exact copy in test: a leak
    (root / "c1" / name_in("c1", "train", "moved")).write_bytes(original.read_bytes())  # in another class, in train
    save(smooth_image(0).resize((61, 61)).rotate(90), root / "c0" / "turned.jpg", "JPEG", quality=70)
    save(smooth_image(777, (200, 30)), root / "c1" / "wide.png")
    save(smooth_image(778, (6, 6)), root / "c2" / "tiny.png")  # under a quarter of 32 px
    (root / "c2" / "broken.png").write_bytes(b"not an image at all")
    report = audit(root)
    exact = report.exact_duplicates
    assert len(exact) == 1 and set(exact[0].files) == {f"c0/{original.name}", f"c0/{leak}", f"c1/{name_in('c1', 'train', 'moved')}"}
    assert exact[0].kind == "leak" and "test" in exact[0].splits
    assert [g.files for g in report.near_duplicates] == [sorted([*exact[0].files, "c0/turned.jpg"])]
    assert report.near_duplicates[0].distance is not None and report.near_duplicates[0].distance <= 20
    assert [(s.file, s.width, s.height) for s in report.small_images] == [("c2/tiny.png", 6, 6)]
    assert [(e.file, e.ratio) for e in report.extreme_aspect] == [("c1/wide.png", 6.67)]
    assert [u.file for u in report.unreadable] == ["c2/broken.png"] and "corrupt header" in report.unreadable[0].reason
    assert [g.files for g in report.leaks()] == [exact[0].files, report.near_duplicates[0].files]  # exact, then near


def test_group_kinds_leak_first_then_conflicting_labels():
    assert group_kind(["a", "a"], ["train", "train"]) == "within_class"
    assert group_kind(["a", "b"], ["train", "train"]) == "across_classes"
    assert group_kind(["a", "b"], ["train", "test"]) == "leak"
    assert group_kind(["a", "a"], ["val", "train"]) == "leak"
    groups = exact_duplicates(["h1", "h1", "h2", "h2", "h3", ""], ["x", "y", "p", "q", "z", "w"],
                              ["a", "a", "a", "b", "a", "a"], ["train", "train", "train", "train", "test", "test"])
    assert [(g.files, g.kind) for g in groups] == [(["p", "q"], "across_classes"), (["x", "y"], "within_class")]


def test_imbalance_is_flagged_over_its_threshold_and_for_an_empty_class():
    assert not imbalance(["a"] * 10 + ["b"] * 2, ["a", "b"]).flagged
    flagged = imbalance(["a"] * int(MAX_IMBALANCE * 2 + 1) + ["b"] * 2, ["a", "b"])
    assert flagged.flagged and flagged.ratio > MAX_IMBALANCE and flagged.counts == {"a": 21, "b": 2}
    assert imbalance(["a"] * 3, ["a", "b"]).flagged


def test_small_images_without_a_size_are_judged_against_the_median(tmp_path):
    root = clean_folder(tmp_path / "data")
    save(smooth_image(900, (10, 10)), root / "c1" / "thumb.png")  # the median is 48: under 12
    assert [s.file for s in audit(root, image_size=None).small_images] == ["c1/thumb.png"]
    assert audit(root, image_size=None).image_size is None


def oof(labels: np.ndarray, rng: np.random.Generator, classes: int = 3) -> np.ndarray:
    """Out-of-fold-like probabilities: most mass on the true class, some noise."""
    logits = rng.normal(0, 0.5, (len(labels), classes))
    logits[np.arange(len(labels)), labels] += 2.5
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_a_flipped_label_ranks_first_and_consistent_labels_give_none():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 20)
    probabilities = oof(truth, rng)
    files = [f"f{i}.png" for i in range(len(truth))]
    names = ["a", "b", "c"]
    confident = probabilities.argmax(axis=1) == truth
    assert not label_issues(probabilities[confident], truth[confident], [f for f, k in zip(files, confident) if k], names)
    given = truth.copy()
    given[7] = 2  # truly "a", labelled "c"
    found = label_issues(probabilities, given, files, names)
    assert found[0].file == "f7.png" and (found[0].given, found[0].suggested) == ("c", "a")
    assert found[0].suggested_probability > found[0].given_probability


def test_a_relabelled_image_that_no_class_claims_confidently_still_ranks_first():
    # Class "b" is usually predicted at 0.95, so its threshold is high; the relabelled image (truly "b", labelled
    # "a") gets 0.6 for "b" (under b's threshold) and 0.03 for its label: the paper's rule alone leaves it out.
    probabilities = np.array([[0.9, 0.05, 0.05]] * 10 + [[0.03, 0.95, 0.02]] * 10 + [[0.05, 0.05, 0.9]] * 10
                             + [[0.03, 0.6, 0.37]])
    given = np.array([0] * 10 + [1] * 10 + [2] * 10 + [0])
    found = label_issues(probabilities, given, [f"f{i}" for i in range(31)], ["a", "b", "c"])
    assert [(f.file, f.given, f.suggested) for f in found] == [("f30", "a", "b")]
    unsure = probabilities.copy()
    unsure[30] = [0.44, 0.46, 0.10]  # disagrees, but its label keeps over half its class's typical confidence
    assert label_issues(unsure, given, [f"f{i}" for i in range(31)], ["a", "b", "c"]) == []


def test_the_json_shape_round_trips_and_lists_are_capped(tmp_path):
    report = audit(clean_folder(tmp_path / "data"))
    issues = label_issues(np.tile([[0.1, 0.9], [0.9, 0.1]], (MAX_LISTED + 5, 1)),
                          np.tile([0, 1], MAX_LISTED + 5), [f"f{i}" for i in range(2 * MAX_LISTED + 10)], ["a", "b"])
    report = with_label_issues(report, issues)
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == SHAPE and set(data["findings"]) == FINDINGS
    assert set(data["findings"]["imbalance"]) == {"counts", "ratio", "flagged"}
    assert len(data["label_issues"]) == MAX_LISTED and data["totals"]["label_issues"] == 2 * MAX_LISTED + 10
    assert set(data["label_issues"][0]) == {"file", "given", "suggested", "given_probability", "suggested_probability"}
    assert AuditReport.from_dict(data).to_dict() == data
    assert AuditReport.from_dict(data).labels_checked() and not audit(tmp_path / "data").labels_checked()


def test_the_split_helper_agrees_with_the_folder_adapter(clean):
    splits = FolderDataset().discover(str(clean))
    assert all(split_of(item.relpath) == name for item, name in zip(splits.items, splits.split))
