"""Small pieces of the report's HTML shared by its sections: a table cell, a table, an embedded picture and a
grid of thumbnails. Every piece of outside text goes through ``html_text``."""

from __future__ import annotations

from typing import Any

from automl_tl.runtime.shown_text import html_text


def cell(value: Any, spec: str = "") -> str:
    """One ``<td>``: a number formatted by ``spec`` and right-aligned, anything else as escaped text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and spec:
        return f'<td class="num">{format(value, spec)}</td>'
    return f"<td>{html_text(str(value))}</td>"


def table(headers: list[str] | None, rows: list[list[str]]) -> str:
    """A table of ready cells (``cell``), with escaped ``headers`` when given."""
    head = "<thead><tr>" + "".join(f"<th>{html_text(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def picture(uri: str, alt: str) -> str:
    """A full-width figure (a PNG data URI)."""
    return f'<img class="plot" src="{uri}" alt="{html_text(alt)}">'


def figure(uri: str | None, alt: str, caption_html: str) -> str:
    """One thumbnail with its caption (``caption_html`` is already escaped); no ``<img>`` when ``uri`` is None
    (a file that could not be read), so the caption stands alone."""
    image = f'<img class="thumb" src="{uri}" alt="{html_text(alt)}">' if uri else '<div class="nothumb">no preview</div>'
    return f"<figure>{image}<figcaption>{caption_html}</figcaption></figure>"


def grid(figures: list[str]) -> str:
    """Thumbnails side by side, wrapping."""
    return f'<div class="grid">{"".join(figures)}</div>'


def more_note(shown: int, total: int, what: str) -> str:
    """"The first N of M <what>" when not all are shown, else ""."""
    return f'<p class="note">The first {shown} of {total} {html_text(what)} are shown.</p>' if total > shown else ""
