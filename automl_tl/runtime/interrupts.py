"""Ctrl-C and SIGTERM become KeyboardInterrupt, but never in the middle of a study write.

Python runs a signal handler between any two bytecodes, also inside a weakref callback or a
``__del__``, where an exception is printed as "Exception ignored" and dropped. So the handler also
remembers the signal, and the trial loop asks ``raise_if_interrupted`` at every epoch: a swallowed
interrupt still stops the run there, instead of waiting for a second Ctrl-C."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_state = {"critical": 0, "pending": False, "signalled": False, "installed": 0}


class StoppedTrial(KeyboardInterrupt):
    """A Ctrl-C or SIGTERM that stopped a running trial; ``detail`` says what became of the trial."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _handler(signum: int, frame: Any) -> None:
    _state["signalled"] = True
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


def raise_if_interrupted() -> None:
    """Raise the interrupt now if a signal arrived whose KeyboardInterrupt was swallowed on the way."""
    if _state["installed"] and _state["signalled"] and not _state["critical"]:
        raise KeyboardInterrupt


def interrupt_handled() -> None:
    """The interrupt reached the code that stops the trial: nothing is left to raise later."""
    _state["signalled"] = False


@contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """Install the handler for SIGINT and SIGTERM for the duration of a command."""
    _state["signalled"] = False
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_about_interrupts(previous_hook)
    _state["installed"] += 1
    try:
        yield
    finally:
        _state["installed"] -= 1
        sys.unraisablehook = previous_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state["signalled"] = False


def _quiet_about_interrupts(previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``sys.unraisablehook`` that drops a KeyboardInterrupt raised where Python cannot propagate it (a weakref
    callback, a ``__del__``): the handler has remembered the signal, and ``raise_if_interrupted`` raises it at the
    next check, so the user sees the stop message instead of "Exception ignored ... Traceback". Anything else
    goes to ``previous``."""

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _state["signalled"]:
            return
        previous(unraisable)

    return hook
