"""The report shows how trials learned and which images to doubt: per-epoch curves with the switch to
fine-tuning marked, the test mistakes sorted by loss with confidences, the data audit with thumbnails, the
skipped files, the search's own split counts, and importances only with enough trials, said so."""

from __future__ import annotations

import base64
import contextlib
import io
import math
import re

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial
from PIL import Image

from automl_tl.cli import main
from automl_tl.report.curves import curves_figure, study_curves
from automl_tl.report.page import plots_section
from automl_tl.report.top_losses import ranked_mistakes
from automl_tl.study_record import (
    BEST_EPOCH_ATTR,
    CV_EPOCH_ACCURACIES_ATTR,
    DATA_AUDIT_ATTR,
    HEAD_EPOCHS_ATTR,
    SPLIT_COUNTS_ATTR,
)
from tests.report.test_report import synthetic_study
from tests.support.browser import browser_missing, open_page
from tests.support.studies import searched_study

MISTAKE = re.compile(r'predicted <b>([^<]*)</b> ([0-9.]+)<br>true ([^<]*) ([0-9.]+)<br><span class="note">loss ([0-9.]+)')
DATA_LINE = re.compile(r"(\d+) train / (\d+) val / (\d+) test images")


def decoded(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def between(page: str, start: str, end: str = "<h2>") -> str:
    """The part of ``page`` from the heading ``start`` to the next ``end``."""
    begin = page.index(start)
    stop = page.find(end, begin + len(start))
    return page[begin:stop if stop >= 0 else len(page)]


@pytest.fixture(scope="module")
def broken_study(tmp_path_factory, small_sample):
    """A real search on a copy of the sample with one corrupt PNG among the images, and what it printed."""
    import shutil

    data = tmp_path_factory.mktemp("doubt") / "animals"
    shutil.copytree(small_sample, data)
    first = sorted(p for p in data.iterdir() if p.is_dir())[0]
    (first / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not the rest of a PNG")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        studies = searched_study(tmp_path_factory, "doubt_studies", data, "doubt", "--trials", "2", "--epochs", "3",
                                 "--image-size", "32", "--backbones", "mobilenet_v2")
    return studies, data, first.name, printed.getvalue()


@pytest.fixture(scope="module")
def doubt_report(broken_study, tmp_path_factory):
    """The study's report, with a data audit recorded on the study that names two of its real images."""
    studies, data, first_class, printed = broken_study
    study = optuna.load_study(study_name="doubt", storage=f"sqlite:///{studies / 'doubt.db'}")
    files = sorted(p.relative_to(data).as_posix() for p in (data / first_class).glob("*.png"))[:2]
    study.set_user_attr(DATA_AUDIT_ATTR, {
        "images": 201, "image_size": 32, "seconds": 0.4, "totals": {"label_issues": 0},
        "findings": {"exact_duplicates": [{"files": files, "classes": [first_class] * 2, "splits": ["train", "test"],
                                           "kind": "leak"}],
                     "near_duplicates": [], "small_images": [], "extreme_aspect": [],
                     "unreadable": [{"file": f"{first_class}/zz_broken.png", "reason": "corrupt"}],
                     "imbalance": {"counts": {first_class: 21}, "ratio": 1.05, "flagged": False}},
        "label_issues": []})
    out = tmp_path_factory.mktemp("doubt_report") / "report.html"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOML_TL_STUDIES", str(studies))
        assert main(["report", "doubt", "-o", str(out)]) == 0
    return out, out.read_text(), study, files, first_class, printed


def test_the_reports_split_counts_are_the_searchs_and_the_skipped_file_is_listed(doubt_report):
    _, page, study, _, first_class, printed = doubt_report
    found = dict(zip(("train", "val", "test"), map(int, DATA_LINE.search(printed).groups()), strict=True))
    used = study.user_attrs[SPLIT_COUNTS_ATTR]
    assert sum(found.values()) - sum(used.values()) == 1  # the corrupt file, found but not used
    summary = between(page, ">Summary")
    for name in ("train", "val", "test"):
        said = f"{name} {used[name]}" + (f" ({found[name]} found, 1 skipped)" if found[name] != used[name] else "")
        assert said in summary, (said, summary)
    skipped = between(page, ">Skipped files")
    assert f"<td>{first_class}/zz_broken.png</td>" in skipped and "not a JPEG or PNG image" in skipped
    split = next(name for name in found if found[name] != used[name])
    assert f"<td>{split}</td>" in skipped
    assert re.search(rf"test accuracy [0-9.]+ on {used['test']} images", page)  # the model scored the images used


def test_mistakes_come_highest_loss_first_with_their_confidences_as_small_thumbnails(doubt_report):
    _, page, _, _, _, _ = doubt_report
    section = between(page, ">Misclassified test images")
    found = MISTAKE.findall(section)
    assert found, section[:500]
    losses = [float(loss) for *_, loss in found]
    assert losses == sorted(losses, reverse=True)
    for predicted, p_predicted, true, p_true, loss in found:
        assert predicted != true and float(p_predicted) >= float(p_true)
        assert float(loss) == pytest.approx(-math.log(max(float(p_true), 1e-12)), abs=0.6)  # p_true shown to 2 places
    thumbs = re.findall(r'<img class="thumb" src="([^"]+)"', section)
    assert len(thumbs) == len(found)
    assert all(max(decoded(uri).size) == 112 for uri in thumbs)  # 32-px images enlarged to one fixed size


def test_ranked_mistakes_sorts_the_wrong_rows_by_loss_and_leaves_the_right_ones_out():
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.05, 0.95], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([0, 0, 0, 1, 0])
    assert ranked_mistakes(probabilities, labels) == [2, 4, 1]  # -log 0.05 > -log 0.2 > -log 0.4; rows 0 and 3 right
    assert ranked_mistakes(probabilities, labels, limit=2) == [2, 4]
    assert ranked_mistakes(np.zeros((0, 2)), np.zeros(0, dtype=np.int64)) == []


def test_the_report_draws_the_curves_of_the_real_trials(doubt_report):
    _, page, study, _, _, _ = doubt_report
    curves = study_curves(study)
    assert curves and curves[0].number == study.best_trial.number
    best = study.best_trial
    assert curves[0].values == [best.intermediate_values[s] for s in sorted(best.intermediate_values)]
    assert between(page, ">Learning curves").count('<img class="plot"') == 1


def curve_trial(value: float, steps: list[float], head_epochs: int | None, **attrs: object) -> optuna.trial.FrozenTrial:
    return create_trial(
        params={"backbone": "resnet18", "lr": 0.01}, value=value,
        distributions={"backbone": CategoricalDistribution(["resnet18"]), "lr": FloatDistribution(1e-4, 1.0, log=True)},
        intermediate_values=dict(enumerate(steps, start=1)),
        user_attrs={HEAD_EPOCHS_ATTR: head_epochs, BEST_EPOCH_ATTR: int(np.argmax(steps)), **attrs})


def test_curves_show_the_chosen_trial_first_and_mark_each_switch_to_fine_tuning():
    study = optuna.create_study(direction="maximize")
    study.add_trial(curve_trial(0.6, [0.4, 0.5, 0.6, 0.55], head_epochs=2))
    study.add_trial(curve_trial(0.8, [0.5, 0.6, 0.7, 0.8], head_epochs=1))  # the chosen one
    study.add_trial(curve_trial(0.7, [0.6, 0.7, 0.65], head_epochs=None))  # head only: no switch
    study.add_trial(curve_trial(0.75, [0.5, 0.6, 0.62], head_epochs=2,
                                **{CV_EPOCH_ACCURACIES_ATTR: [0.55, 0.7, 0.75]}))  # cross-validated
    for number in range(5):
        study.add_trial(curve_trial(0.3 + number / 100, [0.2, 0.3], head_epochs=1))
    figure = curves_figure(study)
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert len(panels) == 6  # the chosen trial and the five next best
    assert [axis.get_title() for axis in panels[:4]] == ["trial 1: resnet18 (chosen)", "trial 3: resnet18",
                                                         "trial 2: resnet18, head only", "trial 0: resnet18"]
    switches = [[line.get_xdata()[0] for line in axis.get_lines() if line.get_linestyle() == "--"] for axis in panels[:4]]
    assert switches == [[1.5], [2.5], [], [2.5]]
    chosen = panels[0].get_lines()[-1]
    assert list(chosen.get_ydata()) == [0.5, 0.6, 0.7, 0.8]
    cv = {line.get_label(): list(line.get_ydata()) for line in panels[1].get_lines()}
    assert cv["pooled out-of-fold"] == [0.55, 0.7, 0.75] and cv["fold 0"] == [0.5, 0.6, 0.62]
    import matplotlib.pyplot as plt

    plt.close(figure)
    assert curves_figure(optuna.create_study(direction="maximize")) is None


def test_importances_are_left_out_below_ten_trials_and_drawn_with_a_caveat_from_ten(monkeypatch):
    import automl_tl.report.figures as figures

    monkeypatch.setattr(figures, "png_data_uri", lambda figure: "data:image/png;base64,AA==")
    few = between(plots_section(synthetic_study(trials=13)), "<h2>Parameter importances")
    assert "Not drawn: only 9 completed trials" in few and "<img" not in few
    enough = between(plots_section(synthetic_study(trials=15)), "<h2>Parameter importances")
    assert "Estimated from 10 completed trials" in enough and '<img class="plot"' in enough
    assert "Not drawn" not in enough


def test_the_audit_section_in_the_real_report_has_thumbnails_of_the_leak(doubt_report):
    _, page, _, files, _, _ = doubt_report
    audit = between(page, ">Data audit")
    leak = between(audit, ">Leaks between splits", "<h3>")
    assert all(name in leak for name in files) and leak.count('<img class="thumb"') == 2
    assert "zz_broken.png" in between(audit, ">Unreadable files", "<h3>")
    assert "Likely label errors</h3><p>None found." in audit


@pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
def test_the_report_with_curves_mistakes_and_audit_renders_in_chromium(doubt_report, tmp_path):
    out, page, *_ = doubt_report
    check = open_page(out, tmp_path / "shot.png")
    assert check.images == page.count("<img ") and check.broken_images == [] and check.console_errors == []


@pytest.fixture
def audited_folder(tmp_path):
    """A data folder of tiny real images: two classes, one with a hostile name, a wide image and a small one,
    a corrupt file, and an image outside the folder that a finding must not reach."""
    root = tmp_path / "data"
    for folder in ("cat", "<b>dog</b>"):
        (root / folder).mkdir(parents=True)
    colours = {"cat/a.png": (200, 30, 30), "cat/b.png": (200, 30, 30), "<b>dog</b>/c.png": (30, 30, 200),
               "<b>dog</b>/d.png": (30, 200, 30)}
    for name, colour in colours.items():
        Image.new("RGB", (40, 30), colour).save(root / name)
    Image.new("RGB", (200, 20), (0, 0, 0)).save(root / "cat" / "wide.png")
    Image.new("RGB", (12, 12), (0, 0, 0)).save(root / "cat" / "small.png")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    Image.new("RGB", (40, 40), (9, 9, 9)).save(tmp_path / "outside.png")
    return root


def audit_dict() -> dict:
    group = {"files": ["cat/a.png", "cat/b.png"], "classes": ["cat", "cat"], "splits": ["train", "train"]}
    return {
        "images": 7, "image_size": 224, "seconds": 0.25, "totals": {"label_issues": 1},
        "findings": {
            "exact_duplicates": [{**group, "kind": "within_class"},
                                 {"files": ["cat/a.png", "<b>dog</b>/c.png"], "classes": ["cat", "<b>dog</b>"],
                                  "splits": ["train", "test"], "kind": "leak"}],
            "near_duplicates": [{"files": ["cat/b.png", "<b>dog</b>/d.png", "../outside.png"],
                                 "classes": ["cat", "<b>dog</b>", "cat"], "splits": ["val", "val", "val"],
                                 "kind": "across_classes", "distance": 3}],
            "small_images": [{"file": "cat/small.png", "width": 12, "height": 12}],
            "extreme_aspect": [{"file": "cat/wide.png", "width": 200, "height": 20, "ratio": 10.0}],
            "unreadable": [{"file": "cat/broken.png", "reason": "corrupt <img src=x onerror=alert(1)>"}],
            "imbalance": {"counts": {"cat": 5, "<b>dog</b>": 2}, "ratio": 2.5, "flagged": True},
        },
        "label_issues": [{"file": "<b>dog</b>/d.png", "given": "<b>dog</b>", "suggested": "cat",
                          "given_probability": 0.08, "suggested_probability": 0.91}],
    }


def test_the_audit_section_orders_the_findings_escapes_them_and_reads_thumbnails_only_inside_the_data(audited_folder):
    from automl_tl.report.audit_section import audit_section

    html = audit_section(audit_dict(), audited_folder, max_pixels=10_000)
    order = [html.index(f">{title}") for title in ("Leaks between splits", "Duplicates across classes",
                                                   "Duplicates within a class", "Likely label errors", "Small images",
                                                   "Extreme aspect ratios", "Unreadable files", "Class balance")]
    assert order == sorted(order)
    assert "<b>dog</b>" not in html and "&lt;b&gt;dog&lt;/b&gt;" in html and "<img src=x" not in html
    assert "given <b>&lt;b&gt;dog&lt;/b&gt;</b> 0.08<br>&rarr; cat 0.91" in html
    across = between(html, ">Duplicates across classes", "<h3>")
    assert across.count('<img class="thumb"') == 2 and "no preview" in across  # ../outside.png: none
    assert "(hash distance 3)" in across
    thumbs = {alt: uri for uri, alt in re.findall(r'<img class="thumb" src="([^"]+)" alt="([^"]*)"', html)}
    wide = np.asarray(decoded(thumbs["cat/wide.png"]).convert("RGB"))
    assert wide.shape == (96, 96, 3) and wide[:30].min() > 240 and wide[48].max() < 40  # padded: the shape shows
    assert "<td>corrupt &lt;img src=x onerror=alert(1)&gt;</td>" in between(html, ">Unreadable files", "<h3>")
    assert '<p class="warning">The largest class has 2.5 times' in html
    assert "cat/a.png" in thumbs and "cat/small.png" in thumbs


def test_the_pixel_cap_and_missing_files_leave_a_finding_without_a_thumbnail(audited_folder):
    from automl_tl.report.audit_section import audit_section

    capped = audit_section(audit_dict(), audited_folder, max_pixels=2_000)  # 40x30 passes, 200x20 (4000) does not
    assert 'alt="cat/wide.png"' not in capped and 'alt="cat/a.png"' in capped
    nowhere = audit_section(audit_dict(), audited_folder / "moved", max_pixels=10_000)
    assert '<img class="thumb"' not in nowhere and ">Leaks between splits" in nowhere
    assert "No data audit is recorded" in audit_section(None, audited_folder, 10_000)
    unchecked = audit_section({**audit_dict(), "totals": {}, "label_issues": []}, audited_folder, 10_000)
    assert "Not looked for" in unchecked
