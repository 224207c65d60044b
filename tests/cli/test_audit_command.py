"""``automl-tl audit``, the audit at the start of a search, ``search --strict``, and the likely label errors
of a cross-validated search in ``show`` and ``audit --labels``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pytest

from automl_tl.cli import main
from automl_tl.study_record import DATA_AUDIT_ATTR
from tests.conftest import STUB_PLUGIN
from tests.support.planted import clean_folder, name_in

STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--trials", "1", "--epochs", "1", "--image-size", "16"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join((captured.out + captured.err).split())  # rich wraps long lines


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A clean folder with one training image copied into test, and one unreadable file."""
    root = clean_folder(tmp_path_factory.mktemp("leaky") / "data")
    copy = name_in("c1", "test", "copy")
    (root / "c1" / copy).write_bytes((root / "c1" / name_in("c1", "train", "img3")).read_bytes())
    (root / "c2" / "broken.png").write_bytes(b"\x89PNG but not really")
    return root, f"c1/{copy}"


def all_files(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_audit_json_has_the_shape_and_names_the_leak_and_writes_nothing(capsys, leaky, isolated_studies):
    root, copy = leaky
    cache = Path(os.environ["AUTOML_TL_CACHE_DIR"])
    before = all_files(cache) | all_files(root)
    code, out, _ = run(capsys, "audit", str(root), "--json", "--image-size", "32")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"images", "image_size", "findings", "label_issues", "seconds"}
    assert data["images"] == 32 and data["image_size"] == 32
    leaks = [g for g in data["findings"]["exact_duplicates"] if g["kind"] == "leak"]
    assert len(leaks) == 1 and copy in leaks[0]["files"] and sorted(leaks[0]["splits"]) == ["test", "train"]
    assert data["findings"]["unreadable"][0]["file"] == "c2/broken.png"
    assert all_files(cache) | all_files(root) == before and not isolated_studies.exists(), "audit wrote something"


def test_audit_tables_name_every_file_and_end_with_one_summary(capsys, leaky):
    root, copy = leaky
    code, _, text = run(capsys, "audit", str(root))
    assert code == 0
    assert "Exact duplicates" in text and copy in text and "leak" in text
    assert "Unreadable files" in text and "c2/broken.png" in text
    assert "Audit 32 images: 1 exact and 0 near-duplicate groups (1 across splits)" in text, text


def test_audit_without_data_or_a_cross_validated_study_is_refused(capsys, small_sample):
    code, _, text = run(capsys, "audit")
    assert code == 2 and "audit needs DATA" in text
    assert run(capsys, "search", str(small_sample), *STUB, "--study", "plain")[0] == 0
    code, _, text = run(capsys, "audit", "--labels", "plain")
    assert code == 2 and "not scored by cross-validation" in text, text


def test_strict_search_refuses_a_leak_naming_the_files_before_any_trial(capsys, leaky, isolated_studies):
    root, copy = leaky
    code, _, text = run(capsys, "search", str(root), *STUB, "--study", "strict", "--strict")
    assert code == 2 and "--strict" in text and copy in text and "(test)" in text, text
    assert "Ran " not in text
    if (isolated_studies / "strict.db").exists():
        assert not optuna.load_study(study_name="strict", storage=f"sqlite:///{isolated_studies / 'strict.db'}").trials


def test_a_search_warns_once_keeps_the_audit_and_goes_on(capsys, leaky, isolated_studies):
    root, copy = leaky
    code, _, text = run(capsys, "search", str(root), *STUB, "--study", "warned")
    assert code == 0, text
    assert text.count("The data audit of") == 1 and f"automl-tl audit {root}" in text and "a leak" in text, text
    study = optuna.load_study(study_name="warned", storage=f"sqlite:///{isolated_studies / 'warned.db'}")
    kept = study.user_attrs[DATA_AUDIT_ATTR]
    assert kept["image_size"] == 16 and copy in kept["findings"]["exact_duplicates"][0]["files"]


def test_a_cross_validated_search_ranks_label_errors_for_show_and_audit_labels(capsys, tmp_path, isolated_studies):
    root = clean_folder(tmp_path / "data", per_class=12)
    code, _, text = run(capsys, "search", str(root), *STUB, "--study", "cv", "--cv", "3")
    assert code == 0, text
    study = optuna.load_study(study_name="cv", storage=f"sqlite:///{isolated_studies / 'cv.db'}")
    assert "label_issues" in study.user_attrs[DATA_AUDIT_ATTR]["totals"], "the out-of-fold probabilities were read"
    code, out, text = run(capsys, "audit", "--labels", "cv", "--json")
    assert code == 0, text
    issues = json.loads(out)
    assert isinstance(issues, list)
    assert all(set(i) == {"file", "given", "suggested", "given_probability", "suggested_probability"} for i in issues)
    code, _, text = run(capsys, "show", "cv")
    assert code == 0
    if issues:  # the stub model's guesses decide how many; each is named in show
        assert issues[0]["file"] in text and "Likely label errors" in text, text


def _tampered(oof, how: str):
    """``oof`` (a trial's kept out-of-fold predictions) damaged in one way the label-error step must notice."""
    import numpy as np

    from automl_tl.storage.predictions import SplitPredictions

    index, labels, probabilities = oof.index.copy(), oof.labels.copy(), oof.probabilities.copy()
    if how == "row out of range":
        index[0] = 10_000
    elif how == "wrong label":
        labels[0] = (labels[0] + 1) % probabilities.shape[1]
    elif how == "wrong columns":
        probabilities = np.concatenate([probabilities, probabilities[:, :1]], axis=1)
    return SplitPredictions(probabilities, index, labels)


def test_label_errors_are_skipped_with_a_note_when_the_kept_predictions_do_not_fit(capsys, tmp_path, isolated_studies):
    """A tampered or damaged predictions file of the best trial: the step is skipped with one note, no
    IndexError and no error about ensembles, and the study says label errors were not looked for."""
    from types import SimpleNamespace

    import numpy as np

    from automl_tl.api.audit_commands import record_label_issues, stored_audit
    from automl_tl.audit.report import AuditReport
    from automl_tl.storage.artifacts import study_artifact_places, trial_dir
    from automl_tl.storage.predictions import PREDICTIONS_FILE, load_predictions, save_predictions
    from automl_tl.tuning.budget import ranked_trials

    root = clean_folder(tmp_path / "data", per_class=12)
    assert run(capsys, "search", str(root), *STUB, "--study", "cv", "--cv", "3")[0] == 0
    study = optuna.load_study(study_name="cv", storage=f"sqlite:///{isolated_studies / 'cv.db'}")
    directory = trial_dir(study_artifact_places(study, None)[0], ranked_trials(study)[0].number)
    kept = load_predictions(directory)
    assert kept is not None and "val" in kept
    original = kept["val"]
    labels = np.zeros(int(original.index.max()) + 1, dtype=np.int64)
    labels[original.index] = original.labels
    table = SimpleNamespace(relpaths=tuple(f"f{i}.png" for i in range(len(labels))), labels=labels,
                            class_names=("c0", "c1", "c2"))
    whole = (directory / PREDICTIONS_FILE).read_bytes()
    for how in ("row out of range", "wrong label", "wrong columns", "not a zip", "truncated"):
        if how in ("not a zip", "truncated"):
            (directory / PREDICTIONS_FILE).write_bytes(b"PK\x03\x04 not a zip" if how == "not a zip" else whole[:len(whole) // 2])
        else:
            save_predictions(directory, {**kept, "val": _tampered(original, how)})
        report = AuditReport(images=len(labels), image_size=16)
        record_label_issues(study, table, report, None)
        text = " ".join(capsys.readouterr().err.split())
        assert "Likely label errors were not looked for" in text and PREDICTIONS_FILE in text, (how, text)
        assert "ensemble" not in text and not report.labels_checked(), how
    save_predictions(directory, kept)  # the file as the search wrote it: the step runs
    record_label_issues(study, table, AuditReport(images=len(labels), image_size=16), None)
    assert "not looked for" not in capsys.readouterr().err
    assert stored_audit(optuna.load_study(study_name="cv", storage=study._storage)).labels_checked()


def test_a_search_with_workers_keeps_its_audit_on_the_study(capsys, leaky, isolated_studies):
    """``--workers 0`` prepares the study and keeps the audit there, so its report shows it."""
    root, copy = leaky
    code, _, text = run(capsys, "search", str(root), *STUB, "--study", "prepared", "--workers", "0")
    assert code == 0, text
    study = optuna.load_study(study_name="prepared", storage=f"sqlite:///{isolated_studies / 'prepared.db'}")
    kept = study.user_attrs.get(DATA_AUDIT_ATTR)
    assert kept is not None and copy in kept["findings"]["exact_duplicates"][0]["files"]
    assert kept["totals"]["leak_groups"] == 1
