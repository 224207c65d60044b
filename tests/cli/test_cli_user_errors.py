"""Bad input and a hostile environment (issue 13, items 7-9): exit code 2, one paragraph that names the
file or setting, no traceback, and nothing created, half-written or left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from automl_tl.cli import main
from automl_tl.errors import UserError
from tests.conftest import STUB_PLUGIN
from tests.support.images import make_class_tree, write_image

STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub"]
QUICK = ["--trials", "1", "--epochs", "1", "--image-size", "16"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())  # rich wraps long lines


def refused(code: int, text: str, *needles: str) -> None:
    assert code == 2, text
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)


def search(capsys, data: str | Path, *extra: str) -> tuple[int, str]:
    return run(capsys, "search", str(data), *QUICK, *STUB, *extra)


def nothing_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_class_tree(tmp_path / "data", {"cat": 6, "dog": 6})


@pytest.fixture
def stub_study(capsys, data: Path, isolated_studies: Path) -> Path:
    """A finished one-trial stub study named "s" in the isolated studies folder; returns its database."""
    code, text = search(capsys, data, "--study", "s")
    assert code == 0, text
    return isolated_studies / "s.db"


def trial_count(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


# -- item 7: tracebacks that become one paragraph ----------------------------------------------
def test_a_nul_byte_in_a_csv_path_cell_or_in_data_is_named(capsys, tmp_path, isolated_studies):
    write_image(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("path,label\na.png,cat\nb\x00.png,dog\n")
    code, text = search(capsys, tmp_path / "m.csv")
    refused(code, text, "m.csv line 3", "NUL byte")
    code, text = search(capsys, str(tmp_path / "da\x00ta"))
    refused(code, text, "DATA", "NUL byte")
    assert not isolated_studies.exists()


def test_a_seed_outside_32_bits_is_refused_before_the_data_is_read(capsys, tmp_path, data, isolated_studies):
    for seed in ("-1", str(2**32), str(2**40)):
        code, text = search(capsys, tmp_path / "never-read", "--seed", seed)
        refused(code, text, f"--seed {seed}", "4294967295")
    assert not isolated_studies.exists()
    code, text = search(capsys, data, "--seed", str(2**32 - 1))  # the largest seed still runs
    assert code == 0, text


def test_a_sqlite_storage_under_a_regular_file_is_refused_and_the_file_kept(capsys, tmp_path, data):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    for url in (f"sqlite:///{blocker}/x.db", f"sqlite:///{blocker}/deeper/x.db"):
        code, text = search(capsys, data, "--storage", url)
        refused(code, text, str(blocker), "is a file, not a folder", "--storage")
        assert "Data" not in text.split("Error")[0], "the images must not be read first"
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("where", ["automl-tl-no-such/x.db", "automl-tl-x.db"])
def test_a_sqlite_storage_under_proc_is_refused(capsys, data, isolated_studies, where):
    # As root the folder check passes (/proc looks writable); the real mkdir or lock file then fails.
    code, text = search(capsys, data, "--storage", f"sqlite:////proc/{where}")
    refused(code, text, f"/proc/{where}", "Cannot create the study database")


def test_sqlite_admission_reports_a_lock_file_it_cannot_make(tmp_path, monkeypatch):
    import automl_tl.distributed.admission as admission
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UserError) as under_a_file:
        admission.SqliteAdmission(blocker / "studies" / "x.db")
    assert str(blocker / "studies" / "x.db") in str(under_a_file.value)

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(admission, "open", denied, raising=False)  # what a read-only folder does for non-root users
    with pytest.raises(UserError) as read_only:
        admission.SqliteAdmission(tmp_path / "studies" / "y.db")
    message = str(read_only.value)
    assert "Permission denied" in message and "y.db.lock" in message and "AUTOML_TL_STUDIES" in message


def deny_writes_under(monkeypatch, folder: Path) -> None:
    """access(2) as on a read-only mount, which says no even to root (chmod does not stop root)."""
    import automl_tl.storage.urls

    real = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve().is_relative_to(folder.resolve()):
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(automl_tl.storage.urls.os, "access", access)


def test_a_read_only_studies_folder_is_named_before_anything_is_written(capsys, data, isolated_studies, monkeypatch):
    isolated_studies.mkdir()
    deny_writes_under(monkeypatch, isolated_studies)
    code, text = search(capsys, data, "--study", "ro")
    refused(code, text, str(isolated_studies), "not writable", "AUTOML_TL_STUDIES")
    assert nothing_under(isolated_studies) == []


def test_a_read_only_database_is_named_as_such_not_as_lost(capsys, data, stub_study, monkeypatch):
    before = trial_count(stub_study)
    deny_writes_under(monkeypatch, stub_study)
    code, text = search(capsys, data, "--study", "s", "--trials", "2")
    refused(code, text, str(stub_study), "read-only")
    assert "Lost" not in text
    assert trial_count(stub_study) == before
    code, text = run(capsys, "worker", "--study", "s")
    refused(code, text, str(stub_study), "read-only")


def test_a_write_to_a_read_only_sqlite_database_says_read_only(tmp_path):
    """A real "attempt to write a readonly database" from SQLite (a read-only connection works for root too)."""
    import sqlalchemy

    from automl_tl.storage.urls import database_errors

    database = tmp_path / "s.db"
    sqlite3.connect(database).close()
    engine = sqlalchemy.create_engine(f"sqlite:///file:{database}?mode=ro&uri=true")
    with pytest.raises(UserError) as caught:
        with database_errors(f"sqlite:///{database}"), engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE t (x INTEGER)"))
    message = str(caught.value)
    assert "read-only" in message and str(database) in message and "Lost" not in message


def test_report_to_an_existing_folder_is_refused_and_leaves_nothing(capsys, stub_study, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    before = nothing_under(tmp_path)
    code, text = run(capsys, "report", "s", "-o", str(folder), "--plugin", STUB_PLUGIN)
    refused(code, text, f"-o {folder}", "is a folder", "report.html")
    assert nothing_under(tmp_path) == before


def test_a_failed_report_write_leaves_no_temporary_file_and_keeps_the_old_report(capsys, stub_study, tmp_path,
                                                                                 monkeypatch):
    import automl_tl.runtime.owned_files as owned_files

    target = tmp_path / "report.html"
    target.write_text("the old report")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(owned_files.os, "replace", disk_full)
    code, text = run(capsys, "report", "s", "-o", str(target), "--plugin", STUB_PLUGIN, "--overwrite")
    refused(code, text, str(target), "No space left on device", "-o")
    assert target.read_text() == "the old report"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report.html.")] == []


def test_an_environment_oserror_that_escapes_is_one_paragraph(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    code, text = run(capsys, "sample-data", str(blocker / "sample"))
    refused(code, text, str(blocker), "a file is in the way")
    assert blocker.read_text() == "mine"


# -- item 8: nonsense that was accepted ---------------------------------------------------------
@pytest.mark.parametrize("option, value", [("--timeout", "-5"), ("--timeout", "0"), ("--timeout", "nan"),
                                           ("--heartbeat", "-5"), ("--heartbeat", "0"), ("--max-pixels", "0"),
                                           ("--max-pixels", "-1"), ("--epochs", "0")])
def test_search_refuses_nonsense_numbers_before_the_data_is_read(capsys, tmp_path, isolated_studies, option, value):
    code, text = search(capsys, tmp_path / "never-read", option, value)
    refused(code, text, option)
    assert not isolated_studies.exists()


@pytest.mark.parametrize("option, value", [("--timeout", "-5"), ("--timeout", "0"), ("--max-pixels", "0")])
def test_a_worker_refuses_nonsense_numbers_before_the_study_is_read(capsys, stub_study, option, value):
    code, text = run(capsys, "worker", "--study", "s", option, value)
    refused(code, text, option)


def test_an_empty_study_name_is_refused_by_every_command(capsys, data, isolated_studies):
    code, text = search(capsys, data, "--study", "")
    refused(code, text, "--study ''")
    assert not isolated_studies.exists(), "an empty name must not fall back to the folder's name"
    for argv in (["worker", "--study", ""], ["show", ""], ["export", "", "--format", "onnx", "-o", "x"],
                 ["report", ""]):
        code, text = run(capsys, *argv)
        refused(code, text, "''")


def test_predict_refuses_top_below_one(capsys, tmp_path):
    for top in ("0", "-3"):
        code, text = run(capsys, "predict", str(tmp_path / "model"), str(tmp_path / "x.png"), "--top", top)
        refused(code, text, f"--top {top}")


def test_an_unterminated_quote_in_a_csv_names_its_line(capsys, tmp_path, isolated_studies):
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        write_image(tmp_path / name, seed=i)
    (tmp_path / "m.csv").write_text('path,label\na.png,cat\n"b.png,dog\nc.png,dog\n')
    code, text = search(capsys, tmp_path / "m.csv")
    refused(code, text, "m.csv line 3", "quote", "never closed")
    assert "label is empty" not in text
    (tmp_path / "m.csv").write_text('path,label\na.png,"cat\nb.png",dog\nc.png,dog\n')
    code, text = search(capsys, tmp_path / "m.csv")
    refused(code, text, "m.csv lines 2-3", "quote", "closed only on line 3")
    assert not isolated_studies.exists()


@pytest.mark.parametrize("counts, named", [({"cat": 6, "dog": 2}, "'dog' (2 images)"),
                                           ({"cat": 6, "dog": 1, "emu": 5}, "'dog' (1 image)")])
def test_a_class_with_fewer_than_three_images_is_refused(capsys, tmp_path, isolated_studies, counts, named):
    root = make_class_tree(tmp_path / "data", counts)
    code, text = search(capsys, root)
    refused(code, text, named, "at least 3", "training, validation and test")
    assert not isolated_studies.exists()


def test_the_core_split_refuses_small_classes_for_every_adapter(tmp_path):
    from automl_tl.data import CsvDataset

    rows = ["path,label"]
    for i in range(5):
        write_image(tmp_path / f"c{i}.png", seed=i)
        rows.append(f"c{i}.png,cat")
    for i in range(2):
        write_image(tmp_path / f"d{i}.png", seed=10 + i)
        rows.append(f"d{i}.png,dog")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(UserError) as caught:
        CsvDataset().discover(str(tmp_path / "m.csv"))
    assert "'dog' (2 images)" in str(caught.value) and "'cat'" not in str(caught.value)
    write_image(tmp_path / "d2.png", seed=20)
    (tmp_path / "m.csv").write_text("\n".join(rows + ["d2.png,dog"]) + "\n")
    assert CsvDataset().discover(str(tmp_path / "m.csv")).class_names == ("cat", "dog")


# -- item 9: smaller gaps -----------------------------------------------------------------------
def test_read_only_commands_never_create_a_database_or_a_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///nonexistent/dir/x.db"
    for argv in (["show", "x"], ["studies"], ["export", "x", "--format", "onnx", "-o", str(tmp_path / "o")],
                 ["report", "x", "-o", str(tmp_path / "r.html")]):
        code, text = run(capsys, *argv, "--storage", url)
        refused(code, text, "No such study database", str(tmp_path / "nonexistent" / "dir" / "x.db"))
        assert not (tmp_path / "nonexistent").exists(), argv
    monkeypatch.setenv("AUTOML_TL_STORAGE", url)
    code, text = run(capsys, "studies", "--json")
    refused(code, text, "No such study database")
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing may be created in the current folder"


def test_report_warns_when_its_data_is_not_the_studys(capsys, stub_study, data, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(data, other)
    write_image(other / "cat" / "extra.png", seed=99)  # same class names, other images
    out = tmp_path / "r.html"
    code, text = run(capsys, "report", "s", "-o", str(out), "--data", str(other), "--plugin", STUB_PLUGIN)
    assert code == 0, text
    assert "warning" in text and f"folder {other} is not the data study 's' was searched on" in text
    page = " ".join(out.read_text().split())
    assert 'class="warning"' in page and "not the data study" in page
    code, text = run(capsys, "report", "s", "-o", str(out), "--plugin", STUB_PLUGIN)
    assert code == 0 and "not the data study" not in text and 'class="warning"' not in out.read_text(), text


@pytest.fixture
def onnx_export(small_cnn_exports: Path) -> Path:
    """A real one-trial small_cnn study's ONNX export."""
    return small_cnn_exports / "onnx"


def test_evaluate_says_which_images_it_skipped(capsys, onnx_export, small_sample, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_sample, data)
    (data / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    capsys.readouterr()
    code = main(["evaluate", str(onnx_export), str(data), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    warning = " ".join(captured.err.split())
    assert "Skipped 1 unusable image" in warning and "cat/broken.png" in warning
    assert json.loads(captured.out)["split"] == "test"  # the JSON on stdout stays clean
