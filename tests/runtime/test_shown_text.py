"""Outside text is shown, never obeyed: ``printable`` escapes every character a terminal or browser acts
on, and only those; ``console_text`` and ``html_text`` add the markup escape of their medium."""

from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console

from automl_tl.runtime.label_names import label_key, look_alike
from automl_tl.runtime.shown_text import console_text, html_text, printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[2J\x1b[31mbear", "\\x1b[2J\\x1b[31mbear"),
    ("bird\x07", "bird\\x07"),
    ("bear\nfake.png: cat 1.000", "bear\\nfake.png: cat 1.000"),
    ("a\rb\tc", "a\\rb\\tc"),
    ("nul\x00del\x7f", "nul\\x00del\\x7f"),
    ("c1\x85\x9b31m", "c1\\x85\\x9b31m"),  # NEL and the 8-bit CSI
    ("abc\u202edcba\u202c", "abc\\u202edcba\\u202c"),  # right-to-left override, pop
    ("\u2066x\u2069\u200e\u200f\u061c", "\\u2066x\\u2069\\u200e\\u200f\\u061c"),
    ("line\u2028para\u2029", "line\\u2028para\\u2029"),
])
def test_controls_separators_and_bidi_formatting_become_visible_escapes(raw, shown):
    assert printable(raw) == shown


@pytest.mark.parametrize("text", ["cat", "[bold red]x [/]", "C:\\x.png", "é e\u0301 日本語 🐻‍❄️ \u200d", "a  b ", ""])
def test_everything_else_is_left_as_it_is(text):
    assert printable(text) == text


def test_a_rich_console_shows_the_escapes_and_no_control_character_even_on_a_terminal():
    for terminal in (False, True):
        out = StringIO()
        Console(file=out, force_terminal=terminal, color_system=None, width=300).print(
            f"label: {console_text('[bold]x[/] ' + chr(27) + '[2J' + chr(7) + chr(10) + 'forged')}", highlight=False)
        text = out.getvalue()
        assert text == "label: [bold]x[/] \\x1b[2J\\x07\\nforged\n", (terminal, text)


def test_html_text_escapes_markup_and_controls():
    assert html_text('<b a="1">\x1b[2J</b>\n') == "&lt;b a=&quot;1&quot;&gt;\\x1b[2J&lt;/b&gt;\\n"
    assert console_text(5) == "5" and html_text(None) == "None"


def test_labels_that_differ_only_in_spaces_or_composition_look_alike():
    assert look_alike(["a", "b", " a"]) == ("a", " a")
    assert look_alike(["a b", "a  b"]) == ("a b", "a  b")
    assert look_alike(["\u00e9", "e\u0301"]) == ("\u00e9", "e\u0301")
    assert look_alike(["Cat", "cat", "x2", "x\u00b2", "a", "a"]) is None, "case, compatibility forms and repeats differ"
    assert label_key(" \t ") == "" and label_key(" a\u3000b ") == "a b"
