"""Text from outside (labels, file names, study names, plugin messages, errors from data) is shown,
never obeyed.

``printable`` is the one rule: every character a terminal or a browser would act on instead of showing
(C0 controls such as newline, carriage return, tab, BEL and ESC; DEL; the C1 controls U+0080-U+009F; the
line and paragraph separators; the bidirectional overrides, embeddings, isolates and marks) becomes a
visible escape such as ``\\n``, ``\\x1b`` or ``\\u202e``. So a label cannot clear the screen, ring the
bell, recolour the terminal, reorder what follows it or start a new, forged output line.

``console_text`` adds rich's markup escape for text printed through a rich console (tables, log lines, the
progress bar); ``html_text`` adds HTML escaping for the report. Machine-readable output (``--json``)
uses none of them: it keeps the exact strings, which ``json.dumps`` escapes itself."""

from __future__ import annotations

import html
import re

from rich.markup import escape

__all__ = ["printable", "console_text", "html_text"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Cc (C0, DEL, C1), U+2028/U+2029, and the bidi formatting characters (ALM, LRM, RLM, LRE..RLO, LRI..PDI).
_ACTED_ON = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``str(text)`` with every control, separator and bidi-formatting character written as a visible
    escape (``\\n``, ``\\x1b``, ``\\u202e``); all other characters, markup and backslashes as they are."""
    return _ACTED_ON.sub(_escaped, str(text))


def console_text(text: object) -> str:
    """``printable(text)`` made literal for rich markup: for any console print, table cell or status line."""
    return escape(printable(text))


def html_text(text: object) -> str:
    """``printable(text)`` HTML-escaped (quotes too): for element text and attribute values of the report."""
    return html.escape(printable(text))
