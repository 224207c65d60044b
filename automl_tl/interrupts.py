"""Ctrl-C and SIGTERM become KeyboardInterrupt, but never in the middle of a study write."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator

_state = {"critical": 0, "pending": False}


def _handler(signum: int, frame: Any) -> None:
    if _state["critical"]:
        _state["pending"] = True  # raised as soon as the storage write is done
        return
    raise KeyboardInterrupt


@contextmanager
def storage_write() -> Iterator[None]:
    """Defer interrupts while the study is asked or told, so no trial is left RUNNING half-written."""
    _state["critical"] += 1
    try:
        yield
    finally:
        _state["critical"] -= 1
        if not _state["critical"] and _state["pending"]:
            _state["pending"] = False
            raise KeyboardInterrupt


@contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """Install the handler for SIGINT and SIGTERM for the duration of a command."""
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
