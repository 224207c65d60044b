"""The CSV manifest dataset adapter: a file with ``path`` and ``label`` columns."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from automl_tl.data.images import IMAGE_SUFFIXES
from automl_tl.data.paths import resolve_under, special_kind
from automl_tl.data.split import make_splits
from automl_tl.errors import UserError
from automl_tl.runtime.label_names import look_alike
from automl_tl.types import DataSplits, ImageItem


class CsvDataset:
    """Reads a CSV manifest whose header has ``path`` and ``label`` columns.

    Relative paths are relative to the CSV's folder, which is the data root; every
    path, absolute or not, must resolve inside it. Other columns are ignored.
    """

    name = "csv"

    def __init__(self, val_fraction: float = 0.15, test_fraction: float = 0.15) -> None:
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def claims(self, location: str) -> bool:
        """True when ``location`` is an existing file whose name ends in ``.csv`` (any case)."""
        path = Path(location).expanduser()
        return path.suffix.lower() == ".csv" and path.is_file()

    def discover(self, location: str) -> DataSplits:
        """Read the manifest, check every row, and split the images stably."""
        csv_path = Path(location).expanduser()
        root = csv_path.resolve().parent
        rows = _read_rows(csv_path)
        entries: list[tuple[str, Path, str]] = []  # (relpath, resolved path, label)
        first_line: dict[Path, int] = {}
        for line, raw_path, label in rows:
            where = f"{csv_path} line {line}"
            if not raw_path:
                raise UserError(f"{where}: the path is empty. Give every row the image's path in the path column.")
            if not label:
                raise UserError(f"{where}: the label is empty. Give every row a class name in the label column.")
            resolved = resolve_under(root, raw_path, context=where)
            if not Path(raw_path).name.lower().endswith(IMAGE_SUFFIXES):
                raise UserError(
                    f"{where}: {raw_path!r} is not a supported image type ({', '.join(IMAGE_SUFFIXES)}). "
                    f"Convert it or remove the row."
                )
            if not resolved.is_file():
                if resolved.exists() and not resolved.is_dir():
                    raise UserError(f"{where}: {raw_path!r} is {special_kind(resolved.stat().st_mode)}, not a regular "
                                    f"image file, so it is not read. Fix the path or remove the row.")
                raise UserError(
                    f"{where}: image file {raw_path!r} does not exist (paths are relative to the CSV's "
                    f"folder {root}). Fix the path or remove the row."
                )
            if resolved in first_line:
                raise UserError(
                    f"{where}: {raw_path!r} is listed again (first on line {first_line[resolved]}). "
                    f"Remove the duplicate row."
                )
            first_line[resolved] = line
            entries.append((_relpath(root, raw_path, resolved), resolved, label))
        if not entries:
            raise UserError(f"{csv_path} has a header but no rows. Add one row per image: path,label.")
        class_names = tuple(sorted({label for _, _, label in entries}))
        _check_labels(csv_path, [(line, label) for line, _, label in rows])
        if len(class_names) < 2:
            raise UserError(
                f"{csv_path} has only one class ({class_names[0]!r}). Classification needs at least two: "
                f"add rows with another label."
            )
        index = {name: i for i, name in enumerate(class_names)}
        items = tuple(ImageItem(path=path, relpath=rel, label=index[label]) for rel, path, label in entries)
        return make_splits(root, f"csv {csv_path}", class_names, items, self.val_fraction, self.test_fraction)


def _read_rows(csv_path: Path) -> list[tuple[int, str, str]]:
    """(1-based line number, path, label) for each non-blank data row, values stripped."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)  # strict: an unclosed quote is an error, not a swallowed file
            start = 1  # the line the record being read starts on
            header = next(reader, None)
            if header is None:
                raise UserError(f"{csv_path} is empty. It needs a header row with path and label columns.")
            columns = [name.strip().lower() for name in header]
            if "path" not in columns or "label" not in columns:
                raise UserError(
                    f"{csv_path}: the header row must have 'path' and 'label' columns; it has "
                    f"{', '.join(repr(c) for c in header) or 'none'}. Add a first line like path,label."
                )
            path_col, label_col = columns.index("path"), columns.index("label")
            rows = []
            start = reader.line_num + 1
            for record in reader:
                if any(value.strip() for value in record):
                    path, label = _cell(record, path_col), _cell(record, label_col)
                    _check_cells(csv_path, start, reader.line_num, path, label)
                    rows.append((start, path, label))
                start = reader.line_num + 1
            return rows
    except UnicodeDecodeError:
        raise UserError(f"{csv_path} is not UTF-8 text. Save the manifest as UTF-8 CSV.") from None
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise UserError(
                f"{csv_path} line {start}: a quote (\") opened on this line is never closed, so the rest of the "
                f"file was read as one value. Close the quote, or remove it if it is part of no value."
            ) from None
        raise UserError(f"{csv_path} line {start} is not valid CSV ({exc}). Fix the file and try again.") from None
    except OSError as exc:
        raise UserError(f"Cannot read {csv_path}: {exc.strerror or exc}.") from None


def _check_cells(csv_path: Path, start: int, end: int, path: str, label: str) -> None:
    """A path or label that holds a line break or a NUL byte is a mistake in the file, not a name."""
    for column, value in (("path", path), ("label", label)):
        if "\x00" in value:
            raise UserError(
                f"{csv_path} line {start}: the {column} {value!r} contains a NUL byte (\\x00), which no file or "
                f"class name can hold. Remove it from the file."
            )
        if "\n" in value or "\r" in value:
            raise UserError(
                f"{csv_path} lines {start}-{end}: the {column} value spans several lines because a quote (\") "
                f"opened on line {start} is closed only on line {end}. Close the quote on line {start}, or remove it."
            )


def _check_labels(csv_path: Path, rows: list[tuple[int, str]]) -> None:
    """Two labels that a reader cannot tell apart (see ``automl_tl.runtime.label_names``) are refused,
    naming the lines where each first appears."""
    first_line: dict[str, int] = {}
    for line, label in rows:
        first_line.setdefault(label, line)
    twins = look_alike(first_line)
    if twins is not None:
        raise UserError(
            f"{csv_path}: the labels {twins[0]!r} (line {first_line[twins[0]]}) and {twins[1]!r} (line "
            f"{first_line[twins[1]]}) differ only in spaces or in how an accent is encoded, so their classes would "
            f"print the same. Write one class's label the same way on every row."
        )


def _cell(record: list[str], column: int) -> str:
    """The stripped value in ``column``, or "" when the row is too short."""
    return record[column].strip() if column < len(record) else ""


def _relpath(root: Path, raw_path: str, resolved: Path) -> str:
    """The row's path relative to the root in POSIX form, as written (normalised), else as resolved."""
    written = Path(raw_path)
    absolute = Path(os.path.normpath(written if written.is_absolute() else root / written))
    if absolute.is_relative_to(root):
        return absolute.relative_to(root).as_posix()
    return resolved.relative_to(root).as_posix()
