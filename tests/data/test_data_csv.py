"""The CSV manifest dataset adapter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automl_tl.data.csv_manifest import CsvDataset
from automl_tl.errors import UserError
from automl_tl.types import DatasetAdapter
from tests.support.images import write_image


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    for name in ("a.png", "b.jpg", "sub/c.PNG", "d.png"):
        write_image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    return tmp_path


def manifest(root: Path, text: str, name: str = "labels.csv") -> str:
    path = root / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_is_a_dataset_adapter() -> None:
    assert isinstance(CsvDataset(), DatasetAdapter)
    assert CsvDataset.name == "csv"


def test_claims_existing_csv_files_in_any_case(root: Path) -> None:
    upper = manifest(root, "path,label\n", "UPPER.CSV")
    assert CsvDataset().claims(upper)
    assert not CsvDataset().claims(str(root / "missing.csv"))
    assert not CsvDataset().claims(str(root))
    assert not CsvDataset().claims(str(root / "notes.txt"))


def test_reads_rows(root: Path) -> None:
    csv = manifest(
        root,
        "\ufeffid, Path ,LABEL,extra\n1,a.png,dog,x\n2, ./sub/../sub/c.PNG , cat ,y\n\n3,%s,dog,z\n4,b.jpg,cat,\n"
        % (root / "d.png"),
    )
    # two images a class: too few to split three ways (each class needs 3), so this reads them into train only
    splits = CsvDataset(val_fraction=0.0, test_fraction=0.0).discover(csv)
    assert splits.class_names == ("cat", "dog")
    assert splits.root == root.resolve()
    assert splits.source == f"csv {csv}"
    assert [(i.relpath, i.label) for i in splits.items] == [("a.png", 1), ("sub/c.PNG", 0), ("d.png", 1), ("b.jpg", 0)]
    assert all(i.path == (root / i.relpath).resolve() for i in splits.items)
    assert len(splits.split) == 4


def test_header_without_path_and_label(root: Path) -> None:
    csv = manifest(root, "file,class\na.png,dog\n")
    with pytest.raises(UserError, match=r"labels\.csv: the header row must have 'path' and 'label'"):
        CsvDataset().discover(csv)


def test_empty_file(root: Path) -> None:
    with pytest.raises(UserError, match=r"labels\.csv is empty"):
        CsvDataset().discover(manifest(root, ""))


def test_no_rows(root: Path) -> None:
    with pytest.raises(UserError, match=r"labels\.csv has a header but no rows"):
        CsvDataset().discover(manifest(root, "path,label\n\n"))


def test_missing_file_names_line(root: Path) -> None:
    csv = manifest(root, "path,label\na.png,dog\nghost.png,cat\n")
    with pytest.raises(UserError, match=r"labels\.csv line 3: image file 'ghost\.png' does not exist"):
        CsvDataset().discover(csv)


def test_empty_label_names_line(root: Path) -> None:
    csv = manifest(root, "path,label\na.png,dog\nb.jpg,\n")
    with pytest.raises(UserError, match=r"labels\.csv line 3: the label is empty"):
        CsvDataset().discover(csv)


def test_short_row_has_empty_label(root: Path) -> None:
    csv = manifest(root, "path,label\na.png\n")
    with pytest.raises(UserError, match=r"labels\.csv line 2: the label is empty"):
        CsvDataset().discover(csv)


def test_empty_path_names_line(root: Path) -> None:
    csv = manifest(root, "path,label\n ,dog\n")
    with pytest.raises(UserError, match=r"labels\.csv line 2: the path is empty"):
        CsvDataset().discover(csv)


def test_unsupported_type_names_line(root: Path) -> None:
    csv = manifest(root, "path,label\na.png,dog\nnotes.txt,cat\n")
    with pytest.raises(UserError, match=r"labels\.csv line 3: 'notes\.txt' is not a supported image type"):
        CsvDataset().discover(csv)


def test_duplicate_row_names_both_lines(root: Path) -> None:
    csv = manifest(root, "path,label\na.png,dog\nb.jpg,cat\n./a.png,dog\n")
    with pytest.raises(UserError, match=r"labels\.csv line 4: '\./a\.png' is listed again \(first on line 2\)"):
        CsvDataset().discover(csv)


def test_one_class(root: Path) -> None:
    csv = manifest(root, "path,label\na.png,dog\nb.jpg,dog\n")
    with pytest.raises(UserError, match=r"labels\.csv has only one class \('dog'\)"):
        CsvDataset().discover(csv)


def test_dotdot_escape_names_line(tmp_path: Path) -> None:
    write_image(tmp_path / "outside.png")
    data = tmp_path / "data"
    write_image(data / "a.png")
    csv = manifest(data, "path,label\na.png,dog\n../outside.png,cat\n")
    with pytest.raises(UserError, match=r"labels\.csv line 3: '\.\./outside\.png' .* outside the data folder"):
        CsvDataset().discover(csv)


def test_absolute_path_outside_is_refused(tmp_path: Path) -> None:
    outside = write_image(tmp_path / "outside.png")
    data = tmp_path / "data"
    write_image(data / "a.png")
    csv = manifest(data, f"path,label\na.png,dog\n{outside},cat\n")
    with pytest.raises(UserError, match=r"labels\.csv line 3: .*outside the data folder"):
        CsvDataset().discover(csv)


def test_not_utf8(root: Path) -> None:
    path = root / "labels.csv"
    path.write_bytes(b"path,label\na.png,\xff\xfe\xfa\n")
    with pytest.raises(UserError, match=r"labels\.csv is not UTF-8"):
        CsvDataset().discover(str(path))


def test_a_row_naming_a_fifo_is_refused_by_its_kind_not_as_missing(root: Path) -> None:
    os.mkfifo(root / "pipe.png")
    with pytest.raises(UserError, match=r"line 2: 'pipe.png' is a named pipe \(FIFO\), not a regular image file"):
        CsvDataset().discover(manifest(root, "path,label\npipe.png,cat\n"))
