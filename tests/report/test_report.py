"""automl-tl report: one self-contained HTML page, rendered in a real browser; and the dashboard reads our studies."""

from __future__ import annotations

import io
import json
import re
import warnings

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import automl_tl.report.figures as figures
from automl_tl.cli import main
from automl_tl.report.best_model import precision_recall
from automl_tl.training.metrics import confusion_matrix
from tests.support.browser import browser_missing, open_page


def test_confusion_matrix_and_per_class_precision_and_recall():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 0, 0])
    matrix = confusion_matrix(labels=labels, predicted=predicted, num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [2, 0, 0]]
    precision, recall = precision_recall(matrix)
    np.testing.assert_allclose(precision, [1 / 3, 2 / 3, 0.0])
    np.testing.assert_allclose(recall, [0.5, 1.0, 0.0])


def synthetic_study(trials: int = 15) -> optuna.Study:
    """Complete trials whose value follows freeze_fraction, and pruned ones with the best epoch they saw."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    study = optuna.create_study(direction="maximize")
    rng = np.random.default_rng(0)
    for number in range(trials):
        trial = study.ask({"backbone": CategoricalDistribution(["a", "b"]), "lr": FloatDistribution(1e-4, 1e-1, log=True),
                           "freeze_fraction": FloatDistribution(0.0, 1.0)})
        if number % 3 == 2:
            trial.set_user_attr("val_accuracy", 0.5)
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, 0.6 + trial.params["freeze_fraction"] / 3 + rng.random() / 50)
    return study


def test_history_and_importances_are_optunas_plots_with_pruned_trials_kept(monkeypatch):
    import matplotlib

    drawn = []
    monkeypatch.setattr(figures, "png_data_uri", lambda figure: drawn.append(figure) or "data:image/png;base64,")
    figures._pyplot()  # the Agg backend, before the style is read
    style = dict(matplotlib.rcParams)
    study = synthetic_study()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's ExperimentalWarning stays inside figures
        figures.history(study)
        assert figures.importances(study) is not None
    history, importance = (figure.axes[0] for figure in drawn)
    assert history.get_title() == "Optimization History Plot"  # drawn by optuna.visualization.matplotlib
    assert history.get_legend_handles_labels()[1] == ["score (validation accuracy)", "Best Value", "pruned (best epoch seen)"]
    assert importance.get_title(loc="left") == "Hyperparameter Importances"
    assert sorted(label.get_text() for label in importance.get_yticklabels()) == ["backbone", "freeze_fraction", "lr"]
    assert dict(matplotlib.rcParams) == style  # Optuna's ggplot style does not leak into the other figures
    assert figures.importances(synthetic_study(trials=3)) is None  # two complete trials: too few to tell
    assert figures.importances(synthetic_study(trials=13)) is None  # nine: still under MIN_IMPORTANCE_TRIALS


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory, small_sample):
    """A real study: pretrained MobileNetV2 and the from-scratch CNN, a few trials on a slice of the sample."""
    import os

    studies = tmp_path_factory.mktemp("report_studies")
    previous = os.environ.get("AUTOML_TL_STUDIES")
    os.environ["AUTOML_TL_STUDIES"] = str(studies)
    try:
        assert main(["search", str(small_sample), "--study", "rep", "--trials", "5", "--epochs", "2", "--image-size", "32",
                     "--backbones", "mobilenet_v2,small_cnn", "--cv", "off"]) == 0
    finally:
        if previous is None:
            os.environ.pop("AUTOML_TL_STUDIES")
        else:
            os.environ["AUTOML_TL_STUDIES"] = previous
    return studies


@pytest.fixture
def report_of(finished_study, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(finished_study))

    def write(*extra: str) -> str:
        out = tmp_path / "report.html"
        assert main(["report", "rep", "-o", str(out), *extra]) == 0
        return out.read_text()

    return write


def test_report_test_the_page_is_self_contained_and_has_every_section(report_of):
    page = report_of()
    for heading in ("Summary", "Leaderboard", "Optimisation history", "Parameter importances",
                    "Freeze fraction and switch epoch, by backbone", "Best result per backbone",
                    "Best model on the test split", "Precision and recall per class",
                    "Misclassified test images, highest loss first", "Learning curves", "Skipped files", "Data audit"):
        assert f">{heading}" in page, heading
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) >= 5 and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in sources)
    assert "http://" not in page and "https://" not in page  # nothing to fetch: it opens offline
    assert "10: bear, bird" in page and re.search(r"train \d+, val \d+, test \d+", page)  # classes, split counts
    assert "32 px (--image-size); shorter side resized (bilinear), centre square of 0.875 of it kept" in page


def test_the_report_still_comes_out_when_the_data_has_moved(report_of, tmp_path):
    page = report_of("--data", str(tmp_path / "gone"))
    assert "The best model could not be evaluated" in page and "does not exist" in page
    assert ">Leaderboard" in page


@pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
def test_the_report_renders_in_headless_chromium_with_all_images_and_no_console_error(report_of, tmp_path):
    report_of()
    shot = tmp_path / "report.png"
    check = open_page(tmp_path / "report.html", shot)
    assert check.title == "automl-tl: rep"
    assert check.images >= 4 and check.broken_images == []
    assert check.console_errors == []
    assert shot.stat().st_size > 20_000


@pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
def test_the_browser_check_sees_a_broken_image_and_a_console_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<html><head><title>broken</title></head><body><img src="missing.png" alt="gone">'
                    '<script>console.error("drawn wrong")</script></body></html>')
    check = open_page(page, tmp_path / "broken.png")
    assert check.title == "broken" and check.images == 1 and check.broken_images == ["gone"]
    assert any("drawn wrong" in message for message in check.console_errors), check.console_errors


def test_the_studies_database_opens_in_optuna_dashboard(finished_study):
    dashboard = pytest.importorskip("optuna_dashboard")
    app = dashboard.wsgi(f"sqlite:///{finished_study / 'rep.db'}")

    def get(path: str) -> dict:
        from wsgiref.util import setup_testing_defaults

        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": io.BytesIO()}
        setup_testing_defaults(environ)
        status: list[str] = []
        body = app(environ, lambda code, headers, *exc_info: status.append(code))
        assert status[0].startswith("200"), status
        return json.loads(b"".join(body))

    studies = get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["rep"]
    detail = get(f"/api/studies/{studies[0]['study_id']}")
    assert len(detail["trials"]) >= 5
    assert any(attr["key"] == "test_accuracy" for t in detail["trials"] for attr in t["user_attrs"])
