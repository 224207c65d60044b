"""``--timeout T`` as a promise: one deadline per command, on the monotonic clock, that code deep down can see.

The command's clock starts when its process started (Linux: ``/proc/self/stat``'s start time, turned
into ``time.monotonic()`` terms), so Python's own start and the imports count; where that cannot be read,
the caller passes the moment it knows of (the CLI: when ``automl_tl.cli`` was imported, or when ``main``
was called in a host process). ``running_under(deadline)`` makes a deadline the active one for the code
it wraps (a context variable: also right for nested calls, and never leaked to another command run in
the same process); ``active()`` reads it, and ``raise_if_passed()`` is the check a long loop makes
between batches. ``DeadlineReached`` is an ordinary exception, not a ``KeyboardInterrupt``: the deadline
is not a Ctrl-C, and its paths must not take the interrupt's (see docs/decisions.md, "Issue 23, the
deadline").
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Deadline", "DeadlineReached", "active", "process_start", "raise_if_passed", "running_under"]


class DeadlineReached(Exception):
    """The command's ``--timeout`` passed while the work that raises this had not finished."""

    def __init__(self, detail: str = "the --timeout passed") -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Deadline:
    """``seconds`` after ``started`` (a ``time.monotonic()`` reading: the command's start)."""

    started: float
    seconds: float

    @classmethod
    def after(cls, seconds: float, started: float | None = None) -> Deadline:
        """The deadline ``seconds`` after ``started`` (default: now)."""
        return cls(time.monotonic() if started is None else float(started), float(seconds))

    @property
    def at(self) -> float:
        """The deadline on the monotonic clock."""
        return self.started + self.seconds

    def remaining(self) -> float:
        """Seconds left before the deadline; 0 once it has passed."""
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        """Whether the deadline has come."""
        return time.monotonic() >= self.at

    def spent(self) -> float:
        """Seconds since the command started."""
        return time.monotonic() - self.started


_ACTIVE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("automl_tl_deadline", default=None)


def active() -> Deadline | None:
    """The deadline the running code is under (``running_under``), or None."""
    return _ACTIVE.get()


@contextmanager
def running_under(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Make ``deadline`` the active one inside the block; None lifts any deadline there (work that must
    finish once the deadline has passed: restoring and saving a trial's best epoch)."""
    token = _ACTIVE.set(deadline)
    try:
        yield deadline
    finally:
        _ACTIVE.reset(token)


def raise_if_passed(deadline: Deadline | None = None, doing: str = "") -> None:
    """Raise ``DeadlineReached`` when ``deadline`` (default: the active one) has passed. ``doing`` says
    what was cut short, for the message (``"decoding the images"``)."""
    deadline = deadline if deadline is not None else active()
    if deadline is not None and deadline.passed():
        raise DeadlineReached(f"the --timeout of {deadline.seconds:g}s passed{f' while {doing}' if doing else ''}")


def process_start(stat: Path = Path("/proc/self/stat")) -> float | None:
    """When this process started, as a ``time.monotonic()`` reading; None where it cannot be read.

    ``/proc/self/stat`` gives the start in clock ticks after boot (field 22); ``CLOCK_BOOTTIME`` is the
    same clock now, and the difference is the process's age (a 10 ms tick)."""
    try:
        text = stat.read_text()
        fields = text[text.rindex(")") + 2 :].split()  # the name (field 2) may hold spaces and parentheses
        ticks = int(fields[22 - 3])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    if not 0.0 <= age < 365 * 86400:
        return None
    return time.monotonic() - age
