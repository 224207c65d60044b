"""Log lines that native libraries (TensorFlow's C++, absl) write straight to the process's stderr, routed
to Python's logging instead, so that they cannot break into a live progress display.

absl writes every line logged before ``absl::InitializeLog()`` to file descriptor 2 whatever the log level
(``TF_CPP_MIN_LOG_LEVEL`` does not reach them), so the only way to keep them off the terminal is to catch
the descriptor itself while such a library loads.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# glog/absl's line format: severity letter, MMDD, time, thread id, file:line], then the message.
_NATIVE_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s:]+:\d+\] ")  # absl: seconds since 1970
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LEVELS = {"I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL}


def native_log_level(line: str) -> int | None:
    """The logging level of a native library's log line (absl's start-up banner: DEBUG); None for other text."""
    if line.startswith(_ABSL_BANNER):
        return logging.DEBUG
    found = _NATIVE_LINE.match(line)
    return _LEVELS[found.group(1)] if found else None


def replay(text: str, logger: logging.Logger) -> None:
    """``text`` caught from stderr: its native log lines go to ``logger``, anything else back to stderr."""
    others = []
    for line in text.splitlines():
        level = native_log_level(line)
        if level is None:
            others.append(line)
        else:
            logger.log(level, "%s", line)
    if any(line.strip() for line in others):
        sys.stderr.write("\n".join(others) + "\n")
        sys.stderr.flush()


@contextmanager
def native_stderr_to_log(logger: logging.Logger) -> Iterator[None]:
    """Within the block, what is written to file descriptor 2 is caught; after it, the native log lines go to
    ``logger`` at their own level and any other text is written to stderr as it was, only later."""
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 in this process: nothing can leak
        yield
        return
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            replay(caught.read().decode("utf-8", errors="replace"), logger)


def python_logs_to_log(*names: str) -> None:
    """The loggers ``names`` write only through logging's own handlers (the host program's configuration),
    never by a handler of their own to the terminal, nor by logging's last resort."""
    terminal = {sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__}
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in terminal:
                logger.removeHandler(handler)
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())
        logger.propagate = True


def quiet_unconfigured_logging() -> None:
    """In a process that configured no logging (the CLI's own), library log records stay off the terminal: a
    ``NullHandler`` on the root logger, so that neither logging's last resort nor absl's ``basicConfig()`` (which
    absl's module functions call when the root logger has no handler) prints them. A configured root is kept."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
