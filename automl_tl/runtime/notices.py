"""Notes for the user that come from deep inside a command (the caches), as warnings.

A layer below the display cannot print without breaking its bars, so it issues a ``CacheNotice`` warning
(``notice_once``, ``count_notice``) and whoever shows things to the user receives it: the search's
progress display prints the notices after the trial that met them (``automl_tl.tuning.progress``), the
CLI prints the rest when a command ends. Both receive them in a ``NoticeInbox`` (``receiving_notices``).
A program that imports automl-tl sees them as ordinary warnings, which it may filter or record.

An inbox says each text once, and gathers counted notices of one topic into one line with the count.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["CacheNotice", "NoticeInbox", "count_notice", "notice_once", "receiving_notices"]

Render = Callable[[int], str]


class CacheNotice(UserWarning):
    """A note for the user from the caches: its ``text``; counted notices also carry their ``topic`` and
    ``render``, which says ``count`` events of the topic in one line."""

    def __init__(self, text: str, topic: str | None = None, render: Render | None = None) -> None:
        super().__init__(text)
        self.text, self.topic, self.render = text, topic, render


def notice_once(text: str) -> None:
    """Say ``text`` to the user (an inbox says it once)."""
    warnings.warn(CacheNotice(text), stacklevel=2)


def count_notice(topic: str, render: Render) -> None:
    """One more event of ``topic``; an inbox says all it received as one line, ``render(count)``."""
    warnings.warn(CacheNotice(render(1), topic, render), stacklevel=2)


class NoticeInbox:
    """The notices received and not yet taken."""

    def __init__(self) -> None:
        self._said: set[str] = set()
        self._waiting: list[str] = []
        self._counted: dict[str, tuple[int, Render]] = {}

    def receive(self, notice: CacheNotice) -> None:
        """Keep ``notice`` for the next ``take`` (a text already said is not said again)."""
        if notice.topic is not None and notice.render is not None:
            count, _ = self._counted.get(notice.topic, (0, notice.render))
            self._counted[notice.topic] = (count + 1, notice.render)
        elif notice.text not in self._said:
            self._said.add(notice.text)
            self._waiting.append(notice.text)

    def take(self) -> list[str]:
        """The notices not yet taken, each counted topic as one line."""
        taken = self._waiting + [render(count) for count, render in self._counted.values()]
        self._waiting, self._counted = [], {}
        return taken


@contextmanager
def receiving_notices(inbox: NoticeInbox | None = None) -> Iterator[NoticeInbox]:
    """For the duration of the block, every ``CacheNotice`` goes to ``inbox`` (a new one when None) instead
    of being shown; any other warning is shown as before. Warnings are per process: open it on the main
    thread (notices issued on other threads meanwhile arrive too)."""
    inbox = NoticeInbox() if inbox is None else inbox
    with warnings.catch_warnings():
        warnings.simplefilter("always", CacheNotice)
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
            if isinstance(message, CacheNotice):
                inbox.receive(message)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show  # restored by catch_warnings
        yield inbox
