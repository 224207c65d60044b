"""Artifacts belong to one study in one storage, and `export --overwrite` replaces only its own exports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from automl_tl.cli import main

SMALL = ["--backbones", "small_cnn", "--trials", "1", "--epochs", "1", "--image-size", "16"]


@pytest.fixture(scope="module")
def two_class_sets(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two data sets with different classes: a (bear, bird, cat) and b (dog, horse)."""
    root = tmp_path_factory.mktemp("clash-data")
    for name, classes in (("a", ("bear", "bird", "cat")), ("b", ("dog", "horse"))):
        for label in classes:
            shutil.copytree(small_sample / label, root / name / label)
    return root / "a", root / "b"


def labels_of(export: Path) -> list[str]:
    return json.loads((export / "labels.json").read_text())


def test_studies_of_one_name_in_two_databases_keep_their_own_models(two_class_sets, tmp_path, capsys):
    data_a, data_b = two_class_sets
    a_db, b_db = f"sqlite:///{tmp_path / 'A.db'}", f"sqlite:///{tmp_path / 'B.db'}"
    assert main(["search", str(data_a), "--study", "clash", "--storage", a_db, *SMALL]) == 0
    assert main(["search", str(data_b), "--study", "clash", "--storage", b_db, *SMALL]) == 0
    assert main(["export", "clash", "--storage", a_db, "--format", "onnx", "-o", str(tmp_path / "from-a")]) == 0
    assert main(["export", "clash", "--storage", b_db, "--format", "onnx", "-o", str(tmp_path / "from-b")]) == 0
    assert labels_of(tmp_path / "from-a") == ["bear", "bird", "cat"]
    assert labels_of(tmp_path / "from-b") == ["dog", "horse"]

    # The study deleted and made again under the same name, on other data: its own artifacts and parity images.
    (tmp_path / "A.db").unlink()
    assert main(["search", str(data_b), "--study", "clash", "--storage", a_db, *SMALL]) == 0
    capsys.readouterr()
    assert main(["export", "clash", "--storage", a_db, "--format", "onnx", "-o", str(tmp_path / "again")]) == 0
    assert labels_of(tmp_path / "again") == ["dog", "horse"]
    assert "same classes: yes" in capsys.readouterr().out

    # Pointing a study at another study's artifacts is refused, with nothing exported.
    b_folder = json.loads((tmp_path / "from-b" / "metadata.json").read_text())
    assert b_folder["study"] == "clash"
    code = main(["export", "clash", "--storage", a_db, "--format", "onnx", "-o", str(tmp_path / "mixed"),
                 "--artifacts", str(tmp_path / "elsewhere")])
    assert code == 2 and "holds no artifacts of study 'clash'" in capsys.readouterr().err
    assert not (tmp_path / "mixed").exists()


@pytest.fixture
def exportable(two_class_sets, tmp_path) -> list[str]:
    storage = f"sqlite:///{tmp_path / 'ex.db'}"
    assert main(["search", str(two_class_sets[1]), "--study", "ex", "--storage", storage, *SMALL]) == 0
    return ["export", "ex", "--storage", storage, "--format", "onnx"]


def test_overwrite_never_deletes_a_folder_that_is_not_its_own_export(exportable, tmp_path, capsys):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "code.py").write_text("print('mine')\n")
    (project / "metadata.json").write_text("")
    code = main([*exportable, "-o", str(project), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "not an automl-tl export" in err and "Traceback" not in err
    assert (project / "src" / "code.py").read_text() == "print('mine')\n" and (project / "metadata.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".project")) == []


def test_overwrite_replaces_its_own_export_but_not_one_with_added_files(exportable, tmp_path, capsys):
    out = tmp_path / "model"
    assert main([*exportable, "-o", str(out)]) == 0
    marker = json.loads((out / "automl-tl-export.json").read_text())
    assert set(marker["entries"]) == {p.relative_to(out).as_posix() for p in out.rglob("*")}
    (tmp_path / ".model.previous").mkdir()  # left over from an older version's interrupted export
    assert main([*exportable, "-o", str(out), "--overwrite"]) == 0
    assert labels_of(out) == ["dog", "horse"] and (tmp_path / ".model.previous").is_dir()
    (out / "notes.txt").write_text("my notes")
    capsys.readouterr()
    code = main([*exportable, "-o", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "notes.txt" in err and (out / "notes.txt").read_text() == "my notes"


def test_an_export_made_before_the_marker_is_still_replaceable(exportable, tmp_path):
    out = tmp_path / "old-export"
    assert main([*exportable, "-o", str(out)]) == 0
    (out / "automl-tl-export.json").unlink()  # what an earlier automl-tl wrote
    assert main([*exportable, "-o", str(out), "--overwrite"]) == 0
    assert (out / "automl-tl-export.json").is_file()


def test_an_export_folder_that_cannot_be_created_is_one_clear_error(exportable, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main([*exportable, "-o", str(blocker / "model")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot create the export folder" in err and "Traceback" not in err
    code = main([*exportable, "-o", str(blocker)])
    assert code == 2 and "is a file, not a folder" in capsys.readouterr().err
    assert blocker.read_text() == "x"


def test_an_artifacts_folder_that_cannot_be_written_stops_the_search_before_any_study(small_sample, tmp_path,
                                                                                      isolated_studies, capsys):
    from tests.conftest import STUB_PLUGIN

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main(["search", str(small_sample), "--study", "ro", "--artifacts", str(blocker), "--trials", "3",
                 "--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs", "1", "--image-size", "16"])
    err = capsys.readouterr().err
    assert code == 2 and "Cannot write the study's artifacts" in err and "No trial was run" in err
    assert not (isolated_studies / "ro.db").exists() and blocker.read_text() == "x"
