"""Notes for the user that come from deep inside a command (the caches), said by the search's progress.

A layer below the display cannot print without breaking its bars, so it leaves notes here and the search
prints them after the trial that met them (``automl_tl.search.progress``). ``notice_once`` says a text once
per process; ``count_notice`` counts events of one topic and says them as one line, with the count.
"""

from __future__ import annotations

from collections.abc import Callable

_NOTICES: list[str] = []
_NOTICED: set[str] = set()
_COUNTED: dict[str, tuple[int, Callable[[int], str]]] = {}


def notice_once(text: str) -> None:
    """Say ``text`` once per process: the search prints it after the trial that met it."""
    if text not in _NOTICED:
        _NOTICED.add(text)
        _NOTICES.append(text)


def count_notice(topic: str, render: Callable[[int], str]) -> None:
    """Count one more event of ``topic``; the next ``take_notices`` says all counted so far as one line,
    ``render(count)``."""
    count, _ = _COUNTED.get(topic, (0, render))
    _COUNTED[topic] = (count + 1, render)


def take_notices() -> list[str]:
    """The notices not yet printed."""
    taken = list(_NOTICES) + [render(count) for count, render in _COUNTED.values()]
    _NOTICES.clear()
    _COUNTED.clear()
    return taken
