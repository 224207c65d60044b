"""Every bad input gets one clear paragraph, exit code 2, no traceback, and no study created."""

from __future__ import annotations

from pathlib import Path

from automl_tl.cli import main
from tests.conftest import STUB_PLUGIN
from tests.support.images import make_class_tree, write_image


def run_search(capsys, data: str, *extra: str) -> tuple[int, str]:
    code = main(["search", data, "--trials", "1", "--epochs", "1", "--image-size", "16", "--plugin", STUB_PLUGIN,
                 "--framework", "stub", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_clean_failure(code: int, output: str, isolated_studies: Path, *needles: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output
    for needle in needles:
        assert needle in output, output
    assert not list(isolated_studies.glob("*.db")), "a study must not be created for bad input"


def test_missing_directory(capsys, tmp_path, isolated_studies):
    code, out = run_search(capsys, str(tmp_path / "nope"))
    assert_clean_failure(code, out, isolated_studies, "nope")


def test_no_images_at_all(capsys, tmp_path, isolated_studies):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "cat" / "notes.txt").write_text("hi")
    (tmp_path / "data" / "dog").mkdir()
    code, out = run_search(capsys, str(tmp_path / "data"))
    assert_clean_failure(code, out, isolated_studies)


def test_empty_class_folder(capsys, tmp_path, isolated_studies):
    root = make_class_tree(tmp_path / "data", {"cat": 6, "dog": 6})
    (root / "emu").mkdir()
    code, out = run_search(capsys, str(root))
    assert_clean_failure(code, out, isolated_studies, "emu")


def test_single_class(capsys, tmp_path, isolated_studies):
    root = make_class_tree(tmp_path / "data", {"cat": 6})
    code, out = run_search(capsys, str(root))
    assert_clean_failure(code, out, isolated_studies, "two")


def test_csv_row_naming_a_missing_file(capsys, tmp_path, isolated_studies):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png", seed=1)
    (tmp_path / "m.csv").write_text("path,label\na.png,cat\nb.png,dog\nmissing.png,dog\n")
    code, out = run_search(capsys, str(tmp_path / "m.csv"))
    assert_clean_failure(code, out, isolated_studies, "m.csv", "missing.png")


def test_csv_row_with_an_empty_label(capsys, tmp_path, isolated_studies):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png", seed=1)
    (tmp_path / "m.csv").write_text("path,label\na.png,cat\nb.png,\n")
    code, out = run_search(capsys, str(tmp_path / "m.csv"))
    assert_clean_failure(code, out, isolated_studies, "m.csv", "3")


def test_too_many_corrupt_images_stop_the_search(capsys, tmp_path, isolated_studies):
    root = make_class_tree(tmp_path / "data", {"cat": 8, "dog": 8})
    for i in range(4):
        (root / "cat" / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, out = run_search(capsys, str(root))
    assert_clean_failure(code, out, isolated_studies, "broken")


def test_unknown_backbone_pattern_and_framework(capsys, small_sample, isolated_studies):
    code, out = run_search(capsys, str(small_sample), "--backbones", "nothing_like_this")
    assert_clean_failure(code, out, isolated_studies, "nothing_like_this")
    code = main(["search", str(small_sample), "--framework", "jax", "--trials", "1"])
    out = capsys.readouterr().err
    assert code == 2 and "jax" in out and "Traceback" not in out


def test_bad_numbers(capsys, small_sample, isolated_studies):
    code, out = run_search(capsys, str(small_sample), "--trials", "0")
    assert_clean_failure(code, out, isolated_studies, "--trials")
    code, out = run_search(capsys, str(small_sample), "--image-size", "4")
    assert_clean_failure(code, out, isolated_studies, "--image-size")


def test_resume_with_other_settings_is_refused(capsys, small_sample):
    assert run_search(capsys, str(small_sample), "--study", "x")[0] == 0
    code, out = run_search(capsys, str(small_sample), "--study", "x", "--epochs", "2", "--trials", "2")
    assert code == 2 and "--epochs changed from 1 to 2" in out and "Traceback" not in out


def test_unknown_study_and_unreachable_storage(capsys):
    assert main(["show", "never_made"]) == 2
    assert "never_made" in capsys.readouterr().err
    assert main(["show", "x", "--storage", "postgresql://user:secret@127.0.0.1:1/db"]) == 2
    err = capsys.readouterr().err
    assert "secret" not in err and "***" in err


def test_several_workers_on_sqlite_are_refused_before_any_data_is_read(capsys, tmp_path):
    code = main(["search", str(tmp_path / "not-even-read"), "--workers", "3"])
    err = capsys.readouterr().err
    assert code == 2 and "SQLite serves one process" in " ".join(err.split()) and "postgresql://" in err
    assert main(["search", str(tmp_path), "--workers", "-1"]) == 2


def test_a_worker_on_a_database_other_than_postgresql_is_refused(capsys):
    assert main(["worker", "--study", "x", "--storage", "mysql://ann:hunter2@db/studies"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "postgresql://" in err and "hunter2" not in err


def test_a_worker_for_a_missing_sqlite_study_leaves_no_empty_database(capsys, isolated_studies):
    assert main(["worker", "--study", "nosuch"]) == 2
    assert "--workers 0" in " ".join(capsys.readouterr().err.split())
    assert not (isolated_studies / "nosuch.db").exists()
