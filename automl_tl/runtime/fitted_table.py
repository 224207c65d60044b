"""A table that fits the console it is printed on, without ever cutting a number.

rich shrinks a table that is too wide by wrapping its columns and, as a last resort, by cutting every
column alike, numbers included ("0.91…"). A ``FittedTable`` decides its columns' widths itself when it
is drawn, for the width it is given: number columns (``numeric=True``) keep the width of their widest
value; text columns wrap at spaces (a word longer than the column folds, nothing is cut); and when even
that does not fit, optional columns are left out, lowest priority first, and the caption says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

__all__ = ["FitColumn", "FittedTable"]

TEXT_MIN = 12  # a text column is not wrapped narrower than this (or than its longest word, if shorter) ...
TEXT_FLOOR = 4  # ... unless the optional columns are gone and the numbers still do not fit
PADDING = 2  # rich's default cell padding: one space each side


@dataclass(frozen=True)
class FitColumn:
    """One column: ``numeric`` columns are never wrapped or cut; ``drop`` orders the optional ones (the
    lowest is left out first; None: always shown); a text column keeps ``keep`` cells (or its longest
    word, if shorter) before an optional column is left out."""

    header: str
    numeric: bool = True
    drop: int | None = None
    justify: Literal["left", "right"] = "right"
    keep: int = TEXT_MIN


def _longest_word(text: Text) -> int:
    return max((cell_len(word) for line in text.plain.splitlines() for word in line.split()), default=0)


def _widest_line(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


class FittedTable:
    """Rows of rich markup under ``columns``, laid out for the console's width when printed."""

    def __init__(self, columns: Sequence[FitColumn], title: str | None = None, caption: str | None = None) -> None:
        self.columns = list(columns)
        self.title, self.caption = title, caption
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: str) -> None:
        """One row of markup strings (text from outside already escaped), one per column."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([Text.from_markup(cell) for cell in cells])

    def _cells(self, index: int) -> Iterable[Text]:
        return (row[index] for row in self.rows)

    def _numeric_width(self, index: int) -> int:
        """The widest value; the header wraps at its spaces to fit it."""
        header = Text(self.columns[index].header)
        return max([_longest_word(header), *(_widest_line(cell) for cell in self._cells(index))])

    def _text_min(self, index: int) -> int:
        words = [_longest_word(Text(self.columns[index].header)), *(_longest_word(c) for c in self._cells(index))]
        return min(max(words), self.columns[index].keep)

    def _natural(self, index: int) -> int:
        return max([_widest_line(Text(self.columns[index].header)), *(_widest_line(c) for c in self._cells(index))])

    def kept_columns(self, width: int) -> list[int]:
        """The columns shown at ``width``: every one, less the optional ones that must go so that the
        numbers keep their width and each text column at least ``TEXT_MIN``."""
        kept = list(range(len(self.columns)))
        optional = sorted((c.drop, i) for i, c in enumerate(self.columns) if c.drop is not None)
        while self._least_width(kept) > width and optional:
            kept.remove(optional.pop(0)[1])
        return kept

    def _least_width(self, kept: list[int]) -> int:
        cells = sum((self._numeric_width(i) if self.columns[i].numeric else self._text_min(i)) + PADDING for i in kept)
        return cells + len(kept) + 1  # the borders

    def _widths(self, kept: list[int], width: int) -> dict[int, int] | None:
        """Fixed widths when the natural ones do not fit ``width``: numbers at their widest, text columns
        at their minimum plus the room left, shared in proportion to what each would like; None when the
        table fits as it is."""
        if sum(self._natural(i) + PADDING for i in kept) + len(kept) + 1 <= width:
            return None
        widths = {i: self._numeric_width(i) if self.columns[i].numeric else self._text_min(i) for i in kept}
        text = [i for i in kept if not self.columns[i].numeric]
        room = width - self._least_width(kept)
        wanted = {i: self._natural(i) - widths[i] for i in text}
        total_wanted = sum(wanted.values())
        if room < 0:  # even the minimum is too wide: text columns fold narrower still, numbers keep their width
            return self._squeezed(widths, text, -room)
        if not total_wanted:
            return widths
        for i in text:
            widths[i] += min(wanted[i], room * wanted[i] // total_wanted)
        left = room - sum(widths[i] - self._text_min(i) for i in text)
        for i in text:  # what the rounding left, to the first text columns that still want it
            given = min(left, self._natural(i) - widths[i])
            widths[i] += given
            left -= given
        return widths

    @staticmethod
    def _squeezed(widths: dict[int, int], text: list[int], deficit: int) -> dict[int, int]:
        """Take ``deficit`` cells from the widest text columns, one at a time, none below ``TEXT_FLOOR``."""
        while deficit > 0:
            widest = max(text, key=lambda i: widths[i], default=None)
            if widest is None or widths[widest] <= TEXT_FLOOR:
                break
            widths[widest] -= 1
            deficit -= 1
        return widths

    def table_for(self, width: int) -> Table:
        """The rich table this draws at ``width`` columns."""
        kept = self.kept_columns(width)
        widths = self._widths(kept, width)
        left_out = [self.columns[i].header for i in range(len(self.columns)) if i not in kept]
        notes = [self.caption or "", f"Left out at this width: {', '.join(left_out)} (a wider terminal shows them)."
                 if left_out else ""]
        caption = " ".join(note for note in notes if note)
        table = Table(title=self.title, caption=caption or None)
        for i in kept:
            column = self.columns[i]
            table.add_column(Text(column.header), justify=column.justify, overflow="fold",
                             width=widths[i] if widths is not None else None)
        for row in self.rows:
            table.add_row(*(row[i] for i in kept))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table_for(options.max_width)
