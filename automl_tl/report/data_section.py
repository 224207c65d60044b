"""The images the report's evaluation read, counted the way the search counts them, and the files it skipped.

``search`` prints the images it found per split ("185 test images") before it decodes them; unusable files
(corrupt, truncated, over the pixel cap) are then skipped, and the study records the images it kept (184).
The report says both, per split, so its numbers are the search's: found, skipped, used; and it lists the
skipped files with the reason each was skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from automl_tl.report.html_parts import cell, more_note, table
from automl_tl.runtime.shown_text import html_text
from automl_tl.types import SPLITS, DataSplits, ImageTable

MAX_SKIPPED_SHOWN = 200


@dataclass(frozen=True)
class DataReading:
    """Per split: the images found (what ``search`` prints), and those used after unusable ones were skipped;
    and each skipped file as (relpath, split, reason)."""

    found: dict[str, int]
    used: dict[str, int]
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def data_reading(splits: DataSplits, table: ImageTable) -> DataReading:
    """What reading ``splits`` into ``table`` found, used and skipped."""
    split_of = {item.relpath: name for item, name in zip(splits.items, splits.split, strict=True)}
    found = {name: len(splits.indices(name)) for name in SPLITS}
    used = {name: int(len(table.splits.get(name, ()))) for name in SPLITS}
    skipped = [(path, split_of.get(path, "?"), reason) for path, reason in table.skipped]
    return DataReading(found, used, skipped)


def split_counts_text(recorded: dict[str, Any], reading: DataReading | None) -> str:
    """The summary's "images per split": the counts the study recorded (images used), with the images found and
    skipped where a split lost some, e.g. "test 184 (185 found, 1 skipped)"; already escaped."""
    if reading is None:
        return ", ".join(html_text(f"{k} {v}") for k, v in recorded.items()) or "-"
    parts = []
    for name in SPLITS:
        lost = reading.found[name] - reading.used[name]
        parts.append(html_text(f"{name} {reading.used[name]}" + (f" ({reading.found[name]} found, {lost} skipped)"
                                                                  if lost else "")))
    return ", ".join(parts)


def skipped_section(reading: DataReading | None) -> str:
    """The files the evaluation's reading of the data skipped, with the reasons; "" when it did not read it."""
    if reading is None:
        return ""
    if not reading.skipped:
        return "<h2>Skipped files</h2><p>None: every image found was used.</p>"
    rows = [[cell(path), cell(split), cell(reason)] for path, split, reason in reading.skipped[:MAX_SKIPPED_SHOWN]]
    noun = "file was" if len(reading.skipped) == 1 else "files were"
    return (f"<h2>Skipped files</h2><p>{len(reading.skipped)} {noun} found but could not be used, so the search "
            f"and this report left {'it' if len(reading.skipped) == 1 else 'them'} out. The counts per split above "
            f"say how many each split lost.</p>" + table(["file", "split", "why it was skipped"], rows)
            + more_note(MAX_SKIPPED_SHOWN, len(reading.skipped), "skipped files"))
