"""Commands that only read a study never write into the database they read (issue 22, item 2): a database
that is not an automl-tl study store is refused in one paragraph saying what it is, and every byte of it,
and of a real study store, is as it was, with no journal left beside it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import optuna
import pytest

from automl_tl.cli import main
from automl_tl.storage.study_store import optuna_revisions
from tests.conftest import STUB_PLUGIN
from tests.support.foreign_databases import NOT_OURS, WHAT_IT_IS, file_state, users_table
from tests.support.images import make_class_tree, write_image

NEVER_SAID = ("pip install", "upgrade", "no longer compatible")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())  # rich wraps long lines


def study_reads(tmp_path: Path) -> dict[str, list[str]]:
    """Every command that reads a study named "s", by name."""
    return {"studies": ["studies"], "show": ["show", "s"],
            "export": ["export", "s", "--format", "onnx", "-o", str(tmp_path / "export")],
            "report": ["report", "s", "-o", str(tmp_path / "report.html")]}


@pytest.mark.parametrize("command", ["studies", "show", "export", "report"])
@pytest.mark.parametrize("kind", sorted(NOT_OURS))
def test_a_read_command_refuses_a_database_that_is_not_a_study_store_and_changes_no_byte(
        command, kind, tmp_path, capsys):
    database = tmp_path / f"{kind}.db"
    NOT_OURS[kind](database)
    before = file_state(database)
    code, text = run(capsys, *study_reads(tmp_path)[command], "--storage", f"sqlite:///{database}")
    assert code == 2, text
    assert str(database) in text and WHAT_IT_IS[kind] in text and "not an automl-tl study store" in text, text
    assert "Traceback" not in text and not any(words in text.lower() for words in NEVER_SAID), text
    assert file_state(database) == before
    assert not (tmp_path / "export").exists() and not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("kind", sorted(NOT_OURS))
def test_a_study_file_of_the_studies_folder_that_is_not_a_store_is_refused_by_name(kind, isolated_studies, capsys):
    isolated_studies.mkdir()
    database = isolated_studies / "s.db"
    NOT_OURS[kind](database)
    before = file_state(database)
    code, text = run(capsys, "show", "s")
    assert code == 2 and str(database) in text and WHAT_IT_IS[kind] in text, text
    assert file_state(database) == before


def test_studies_lists_the_real_stores_of_the_folder_and_names_the_others(isolated_studies, capsys):
    isolated_studies.mkdir()
    optuna.create_study(study_name="real", storage=f"sqlite:///{isolated_studies / 'real.db'}")
    users_table(isolated_studies / "other.db")
    before = {path.name: file_state(path) for path in isolated_studies.iterdir()}
    code, text = run(capsys, "studies")
    assert code == 0, text
    assert "real" in text and "skipped" in text and str(isolated_studies / "other.db") in text
    assert {path.name: file_state(path) for path in isolated_studies.iterdir()} == before


def optuna_store(path: Path, edit: str | None = None) -> Path:
    """An Optuna study store with study "s", then changed by one SQL statement."""
    optuna.create_study(study_name="s", storage=f"sqlite:///{path}")
    if edit:
        with sqlite3.connect(path) as connection:
            connection.execute(edit)
        connection.close()
    return path


@pytest.mark.parametrize("edit, said", [
    ("UPDATE alembic_version SET version_num = 'v3.0.0.d'", "an Optuna study store of an older schema"),
    ("UPDATE alembic_version SET version_num = 'v9.9.9.z'", "which this Optuna"),
    ("DELETE FROM version_info", "never finished"),
    ("DROP TABLE trial_heartbeats", None),  # a store Optuna would complete with create_all: read as it is
])
def test_an_optuna_store_of_another_schema_is_read_as_it_is_or_refused_without_a_change(edit, said, tmp_path, capsys):
    database = optuna_store(tmp_path / "s.db", edit)
    before = file_state(database)
    code, text = run(capsys, "show", "s", "--storage", f"sqlite:///{database}")
    if said is None:
        assert code == 0 and "Study 's'" in text, text
    else:
        assert code == 2 and said in text and str(database) in text, text
        assert "pip install" not in text
    assert file_state(database) == before


def test_the_head_revision_is_the_one_optuna_stamps(tmp_path):
    database = optuna_store(tmp_path / "s.db")
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()[0] == optuna_revisions()[0]
    connection.close()


# -- a real study of automl-tl: every read command, the file unchanged ------------------------------------------
@pytest.fixture
def real_study(small_cnn_exports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the one-trial small_cnn study "mf" (its database read-only on disk), made current."""
    studies = tmp_path / "studies_copy"
    shutil.copytree(small_cnn_exports / "studies", studies)
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(studies))
    return studies / "mf.db"


def test_every_read_command_leaves_a_real_study_byte_for_byte(real_study, small_cnn_exports, small_sample, tmp_path,
                                                             capsys):
    before = file_state(real_study)
    image = write_image(tmp_path / "photo.png", size=(20, 20))
    commands = [["studies"], ["show", "mf"], ["show", "mf", "--json"],
                ["export", "mf", "--format", "onnx", "-o", str(tmp_path / "export")],
                ["report", "mf", "-o", str(tmp_path / "report.html")],
                ["predict", str(small_cnn_exports / "onnx"), str(image)],
                ["evaluate", str(small_cnn_exports / "onnx"), str(small_sample)], ["cache"]]
    for command in commands:
        code, text = run(capsys, *command)
        assert code == 0, (command, text)
        assert file_state(real_study) == before, command


def test_commands_without_a_study_leave_every_database_named_to_them_alone(
        small_cnn_exports, small_sample, isolated_studies, tmp_path, monkeypatch, capsys):
    """predict, evaluate and cache read no study: the storage set in the environment and the studies
    folder's files stay as they were, whatever they hold."""
    isolated_studies.mkdir()
    for kind, make in NOT_OURS.items():
        make(isolated_studies / f"{kind}.db")
    before = {path.name: file_state(path) for path in isolated_studies.iterdir()}
    image = write_image(tmp_path / "photo.png", size=(20, 20))
    for kind in NOT_OURS:
        monkeypatch.setenv("AUTOML_TL_STORAGE", f"sqlite:///{isolated_studies / f'{kind}.db'}")
        for command in (["predict", str(small_cnn_exports / "onnx"), str(image)], ["cache"], ["cache", "--json"]):
            code, text = run(capsys, *command)
            assert code == 0, (kind, command, text)
    code, text = run(capsys, "evaluate", str(small_cnn_exports / "onnx"), str(small_sample))
    assert code == 0, text
    assert {path.name: file_state(path) for path in isolated_studies.iterdir()} == before


# -- search writes, but never into another application's database --------------------------------------------------
@pytest.mark.parametrize("kind", ["users", "alembic", "text", "wal"])
def test_search_refuses_a_database_of_another_application_before_reading_images(kind, tmp_path, capsys):
    make_class_tree(tmp_path / "data", {"cat": 3, "dog": 3})
    database = tmp_path / f"{kind}.db"
    NOT_OURS[kind](database)
    before = file_state(database)
    code, text = run(capsys, "search", str(tmp_path / "data"), "--storage", f"sqlite:///{database}", "--plugin",
                     STUB_PLUGIN, "--framework", "stub", "--trials", "1", "--epochs", "1", "--image-size", "16")
    assert code == 2 and str(database) in text and WHAT_IT_IS[kind] in text, text
    assert "pip install" not in text
    assert file_state(database) == before


def test_search_still_makes_a_store_in_an_empty_file(tmp_path):
    from automl_tl.storage.urls import open_storage

    database = tmp_path / "empty.db"
    database.write_bytes(b"")
    storage = open_storage(f"sqlite:///{database}")
    optuna.create_study(study_name="new", storage=storage)
    assert [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)] == ["new"]


# -- PostgreSQL -------------------------------------------------------------------------------------------------
def table_names(url: str) -> list[str]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        return sorted(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_read_commands_create_no_table_in_an_empty_postgres_database(postgres_url, tmp_path, capsys):
    for command in study_reads(tmp_path).values():
        code, text = run(capsys, *command, "--storage", postgres_url)
        assert code == 2 and "is an empty database (no tables)" in text, (command, text)
        assert "pw-Zq8" not in text
        assert table_names(postgres_url) == []


def test_a_postgres_study_is_read_through_a_read_only_connection(postgres_url, capsys):
    from automl_tl.storage.urls import open_storage

    study = optuna.create_study(study_name="s", storage=postgres_url, direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    code, text = run(capsys, "show", "s", "--storage", postgres_url)
    assert code == 0 and "Study 's': complete 2" in text, text
    read_only = optuna.load_study(study_name="s", storage=open_storage(postgres_url, read_only=True))
    with pytest.raises(optuna.exceptions.StorageInternalError) as refused:
        read_only.set_user_attr("written", True)
    assert "read-only transaction" in str(refused.value.__cause__)
    assert "written" not in optuna.load_study(study_name="s", storage=postgres_url).user_attrs


@pytest.mark.parametrize("command", [["show", "s"], ["studies"], ["export", "s", "--format", "onnx", "-o", "out"]])
def test_a_damaged_study_store_is_named_not_a_traceback(command, tmp_path, capsys, monkeypatch):
    database = optuna_store(tmp_path / "s.db")
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{database}")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE trial_params SET distribution_json = '{\"attributes\": {}}'")
    connection.close()
    monkeypatch.chdir(tmp_path)
    before = file_state(database)
    code, text = run(capsys, *command, "--storage", f"sqlite:///{database}")
    assert code == 2 and f"Cannot read the study store {database}" in text and "damaged" in text, text
    assert file_state(database) == before


UNFINISHED_WRITE = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("PRAGMA cache_size=1")  # spill changed pages into the file before the commit
connection.execute("BEGIN")
connection.execute("CREATE TABLE big (x)")
for _ in range(500):
    connection.execute("INSERT INTO big VALUES (?)", ("x" * 1000,))
os._exit(0)  # killed mid-write: the -journal beside the file is hot
"""


def test_an_unfinished_write_is_named_by_reads_and_rolled_back_by_search(tmp_path, capsys):
    import subprocess
    import sys

    from automl_tl.storage.urls import open_storage

    database = optuna_store(tmp_path / "s.db")
    subprocess.run([sys.executable, "-c", UNFINISHED_WRITE, str(database)], check=True)
    assert Path(f"{database}-journal").exists()
    before = file_state(database)
    code, text = run(capsys, "show", "s", "--storage", f"sqlite:///{database}")
    assert code == 2 and f"{database}-journal" in text and "unfinished write" in text, text
    assert file_state(database) == before
    open_storage(f"sqlite:///{database}")  # what search does first: the write is rolled back
    assert not Path(f"{database}-journal").exists() or Path(f"{database}-journal").stat().st_size == 0
    code, text = run(capsys, "show", "s", "--storage", f"sqlite:///{database}")
    assert code == 0 and "Study 's'" in text, text
