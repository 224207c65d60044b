"""What runs around every command, from the CLI and from the Python API alike: a plugin's warnings as one
line, the caches' notes said once at the end, and Ctrl-C or SIGTERM turned into a clean stop."""

from __future__ import annotations

import argparse
import errno
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from automl_tl.api.common import console, err_console
from automl_tl.errors import UserError
from automl_tl.runtime.interrupts import interrupts_as_keyboard_interrupt
from automl_tl.runtime.notices import receiving_notices
from automl_tl.runtime.shown_text import console_text

ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                      errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG, errno.EMFILE, errno.ENFILE}


@contextmanager
def running_command(args: argparse.Namespace) -> Iterator[None]:
    """Around one command. A ``UserError`` leaves with no piece of a storage password in it, and an OSError of
    the user's machine (a full disk, a folder not writable) leaves as a ``UserError`` paragraph naming the file.
    The signal handlers are installed from the main thread only (Python allows no other; a notebook runs its
    cells there)."""
    signals = interrupts_as_keyboard_interrupt() if threading.current_thread() is threading.main_thread() else nullcontext()
    try:
        with signals, warnings.catch_warnings(), framework_logs_off_the_display():
            warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
            warnings.showwarning = show_plugin_warnings(warnings.showwarning)  # restored by catch_warnings
            with receiving_notices() as notices:  # a search's display says its own; the rest are said here
                try:
                    yield
                finally:  # also before a refusal's paragraph: what the cache rebuilt is true either way
                    say_notices(notices.take(), args)
    except UserError as exc:
        exc.args = (without_secrets(str(exc), getattr(args, "storage", None)),)  # the same class (a caller may catch a subclass)
        raise
    except OSError as exc:  # a last resort: the specific cases have their own messages
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        raise UserError(without_secrets(describe_os_error(exc), getattr(args, "storage", None))) from None


@contextmanager
def framework_logs_off_the_display() -> Iterator[None]:
    """Where nothing configured logging (a notebook, a script), library log records (TensorFlow's, absl's) are
    dropped while the command runs, instead of landing in its display; the process is as it was afterwards.
    A configured root logger (the CLI's, or the user's own) is left alone."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def describe_os_error(exc: OSError) -> str:
    """One paragraph for an OSError of the user's environment: the file, the error, what to do."""
    files = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    where = f"{files}: " if files else ""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        where += "a file is in the way where a folder is needed: "
    return (f"{where}{exc.strerror or exc}. Check that the file or folder named here is the one you meant, that "
            f"you may write to it, and that its disk has free space; then run the command again.")


def without_secrets(message: str, storage: str | None) -> str:
    """A last guard: no piece of the password of ``storage`` (the URL given) or ``$AUTOML_TL_STORAGE`` in an
    error, whatever path or part of the URL the message quotes (a SQLite path made from a malformed URL holds
    the password too)."""
    from automl_tl.runtime.env_vars import STORAGE
    from automl_tl.storage.urls import scrub

    for url in (storage, STORAGE.raw()):
        if url:
            message = scrub(message, url)
    return message


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
