"""``search --cv auto|off|K``: the range, the auto threshold, the line at search start, show's wording, and a
real cross-validated trial through export and ``evaluate --split all``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automl_tl.cli import main
from automl_tl.errors import UserError
from automl_tl.tuning.scoring import AUTO_BELOW_VAL_IMAGES, AUTO_FOLDS, choose_scoring
from tests.conftest import STUB_PLUGIN

STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--trials", "1", "--epochs", "1", "--image-size", "16"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())  # rich wraps long lines


@pytest.mark.parametrize("folds", ["1", "11", "0"])
def test_a_fold_count_outside_two_to_ten_is_refused_before_anything_is_made(capsys, small_sample, isolated_studies, folds):
    code, text = run(capsys, "search", str(small_sample), *STUB, "--study", "bad", "--cv", folds)
    assert code == 2 and "between 2 and 10 folds" in text and "Traceback" not in text, text
    assert not (isolated_studies / "bad.db").exists()


def test_a_word_other_than_auto_or_off_is_refused(capsys, small_sample):
    with pytest.raises(SystemExit) as stopped:
        main(["search", str(small_sample), "--cv", "many"])
    assert stopped.value.code == 2
    assert "give auto, off or a whole number for --cv" in capsys.readouterr().err


def test_auto_cross_validates_below_the_threshold_and_keeps_a_studys_own_scoring():
    assert choose_scoring("auto", AUTO_BELOW_VAL_IMAGES - 1, 1000, None).folds == AUTO_FOLDS
    assert choose_scoring("auto", AUTO_BELOW_VAL_IMAGES, 1000, None).folds == 0
    assert choose_scoring("auto", 10, 1000, recorded=0).folds == 0, "a study made without CV resumes without it"
    assert choose_scoring("auto", 5000, 9000, recorded=3).folds == 3
    assert choose_scoring("off", 10, 100, None).folds == 0
    assert choose_scoring(7, 5000, 9000, None).folds == 7
    with pytest.raises(UserError, match="fewer than the folds"):
        choose_scoring(5, 2, 4, None)


def test_search_says_how_trials_are_scored_and_show_names_the_values(capsys, small_sample, monkeypatch):
    monkeypatch.delenv("AUTOML_TL_CV")  # the default a user gets: auto
    code, text = run(capsys, "search", str(small_sample), *STUB, "--study", "auto")
    assert code == 0, text
    assert f"Trials are scored by {AUTO_FOLDS}-fold cross-validation over the" in text, text
    assert "the validation split has" in text and "under 300" in text
    code, text = run(capsys, "show", "auto")
    assert code == 0 and f"score: {AUTO_FOLDS}-fold cross-validated accuracy" in text and "out-of-fold predictions" in text, text
    assert "Best trial 0 (the chosen model): score " in text, text
    code, text = run(capsys, "search", str(small_sample), *STUB, "--study", "plain", "--cv", "off")
    assert code == 0 and "cross-validation" not in text, text
    code, text = run(capsys, "show", "plain")
    assert code == 0 and "cross-validated" not in text and "score: accuracy on the validation split" in text, text


def test_a_cross_validated_trial_exports_and_evaluates_on_every_image_of_a_folder(capsys, small_sample, tmp_path: Path):
    code, text = run(capsys, "search", str(small_sample), "--study", "cvreal", "--trials", "1", "--epochs", "1",
                     "--image-size", "16", "--backbones", "small_cnn", "--cv", "3")
    assert code == 0 and "3-fold cross-validation" in text, text
    out = tmp_path / "export"
    assert main(["export", "cvreal", "--format", "onnx", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), str(small_sample), "--split", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "all"
    assert result["images"] == sum(1 for p in small_sample.rglob("*.png"))


@pytest.mark.parametrize("value", ["junk", "11", "1", "2.5"])
def test_a_bad_automl_tl_cv_is_named_as_the_environment_variable(capsys, small_sample, isolated_studies, monkeypatch,
                                                                 value):
    monkeypatch.setenv("AUTOML_TL_CV", value)
    code, text = run(capsys, "search", str(small_sample), *STUB, "--study", "env")
    assert code == 2, text
    assert f"AUTOML_TL_CV='{value}': the environment variable sets search --cv's default" in text, text
    assert "argument --cv" not in text and "--cv " + value not in text
    assert not (isolated_studies / "env.db").exists()


def test_cv_given_on_the_command_line_wins_over_a_bad_environment_value(capsys, small_sample, monkeypatch):
    monkeypatch.setenv("AUTOML_TL_CV", "junk")
    code, text = run(capsys, "search", str(small_sample), *STUB, "--study", "flag", "--cv", "off")
    assert code == 0, text
    monkeypatch.setenv("AUTOML_TL_CV", " ")  # set but empty: the default, auto
    code, text = run(capsys, "search", str(small_sample), *STUB, "--study", "blank")
    assert code == 0 and "cross-validation" in text, text
