"""The command line: a thin layer over the commands. Exit codes: 0 ok, 2 bad input, 1 internal error, 130 stopped.

The commands and their options live in ``automl_tl.api`` (one module per group), where the Python API calls
them too; this module parses the command line onto them and turns what they raise into the one-paragraph
messages and exit codes users see."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

IMPORTED = time.monotonic()  # the command's start where the process's own cannot be read (--timeout counts from it)

from automl_tl.runtime.env_vars import TF_LOG_LEVEL  # noqa: E402

TF_LOG_LEVEL.put_default("2")  # TensorFlow's C++ notices are not for users (the user's own setting wins)

from automl_tl.api.common import err_console  # noqa: E402
from automl_tl.api.parser import build_parser  # noqa: E402
from automl_tl.api.running import running_command  # noqa: E402
from automl_tl.errors import UserError  # noqa: E402
from automl_tl.runtime.interrupts import StoppedTrial  # noqa: E402
from automl_tl.runtime.memory import tune_allocator  # noqa: E402
from automl_tl.runtime.native_logs import quiet_unconfigured_logging  # noqa: E402
from automl_tl.runtime.shown_text import console_text  # noqa: E402


def main(argv: Sequence[str] | None = None, started: float | None = None) -> int:
    """Run one command; returns its exit code. The process is the CLI's own, so its allocator is
    tuned for training loops here (a host program that imports automl-tl keeps its own settings).
    ``started``: when the command started, on ``time.monotonic()``'s clock (``--timeout`` counts from it);
    by default, now (``entry_point`` passes the process's start)."""
    started = time.monotonic() if started is None else started
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_started = started
    tune_allocator()
    quiet_unconfigured_logging()  # frameworks' log records go to the log, never into a display
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        with running_command(args):  # a refusal, or an OSError of the user's machine, comes out as a UserError
            return handler(args)
    except UserError as exc:
        err_console.print(f"[bold red]Error:[/] {console_text(str(exc))}", highlight=False)
        return 2
    except KeyboardInterrupt as exc:
        detail = f" {exc.detail}" if isinstance(exc, StoppedTrial) else ""
        err_console.print(f"Stopped.{console_text(detail)} {stopped_message(args)}", highlight=False)
        return 130


_RESUME = "Finished trials are saved; run the same command again to resume."
_ONLY_READS = "This command writes nothing of yours, so nothing is left half-done."
# What is true of each command's output when Ctrl-C or SIGTERM stops it part-way.
_STOPPED = {
    "search": _RESUME,
    "worker": _RESUME,
    "export": "The folder named by -o holds what it held before, or the complete new export; never a part of one. "
              "Run the same command again to export.",
    "report": "The file named by -o holds what it held before, or the complete new report; never a part of one. "
              "Run the same command again to write it.",
    "sample-data": "The sample folder is either complete or not there; run the same command again to write it.",
    "cache": "Any entries already deleted are gone, the rest are kept; run the same command again to finish.",
}


def stopped_message(args: argparse.Namespace) -> str:
    """What a Ctrl-C or SIGTERM left behind, for the command that was stopped."""
    if args.command == "show" and getattr(args, "plot", None):
        return "The --plot file holds what it held before, or the complete new plot. Run the same command again."
    if args.command == "cache" and not getattr(args, "clear", False):
        return _ONLY_READS
    return _STOPPED.get(args.command, _ONLY_READS)


def entry_point() -> None:
    """The ``automl-tl`` command: ``main`` with the process's start as the command's."""
    import gc

    from automl_tl.runtime.deadline import process_start

    code = main(started=process_start() or IMPORTED)
    # The interpreter's last collection would walk every object torch and its friends made (0.5-2 s past the
    # command's end, counted against --timeout); atexit handlers still run, the memory goes back with the process.
    gc.freeze()
    sys.exit(code)
