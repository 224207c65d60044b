"""What runs around every command, from the CLI and from the Python API alike: a plugin's warnings as one
line, the caches' notes said once at the end, and Ctrl-C or SIGTERM turned into a clean stop."""

from __future__ import annotations

import argparse
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from automl_tl.api.common import console, err_console
from automl_tl.runtime.interrupts import interrupts_as_keyboard_interrupt
from automl_tl.runtime.notices import receiving_notices
from automl_tl.runtime.shown_text import console_text


@contextmanager
def running_command(args: argparse.Namespace) -> Iterator[None]:
    """Around one command. The signal handlers are installed from the main thread only (Python allows no
    other; a notebook runs its cells there)."""
    signals = interrupts_as_keyboard_interrupt() if threading.current_thread() is threading.main_thread() else nullcontext()
    with signals, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
        warnings.showwarning = show_plugin_warnings(warnings.showwarning)  # restored by catch_warnings
        with receiving_notices() as notices:  # a search's display says its own; the rest are said here
            try:
                yield
            finally:  # also before a refusal's paragraph: what the cache rebuilt is true either way
                say_notices(notices.take(), args)


def show_plugin_warnings(previous: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` for a command: a plugin's warning is one escaped line on stderr, not
    Python's file-and-source-line format; any other warning is shown as before."""
    from automl_tl.plugin.manager import PluginWarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, *rest: object) -> None:
        if isinstance(category, type) and issubclass(category, PluginWarning):
            err_console.print(f"[yellow]warning[/] {console_text(one_line(str(message)))}", highlight=False)
        else:
            previous(message, category, filename, lineno, *rest)

    return show


def say_notices(notices: list[str], args: argparse.Namespace) -> None:
    """The caches' notes that no search display said: after the command's output, on stderr when the output
    is JSON (so that it stays parseable)."""
    for notice in notices:
        (err_console if getattr(args, "json", False) else console).print(f"[yellow]note[/] {console_text(notice)}",
                                                                          highlight=False)


def one_line(text: str) -> str:
    return " ".join(text.split())
