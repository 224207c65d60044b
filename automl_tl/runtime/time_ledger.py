"""Where a command's time goes: named phases timed into one ledger that the command owns.

Each phase is charged its own time only. A phase opened inside another (the cache's passes inside a
trial, a latency measurement inside a trial) is taken out of the outer one, so the phases add up to the
time they covered and no second is counted twice. A trial is a phase of its own, kept per trial number,
so a summary can later sort trials by their kind (which the study records) without the ledger knowing it.

A ledger is made active only in the context that records into it (``recording``, a contextvar, not a
process-wide list), so code deep in the cache can charge it with ``charged(CACHE_PASSES)`` without being
handed it, and two ledgers in one process (two searches, tests) never mix. A new thread starts outside
every ledger: what it does is charged to nothing, and the summary's remainder ("other") holds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["BLOCK_TIMING", "CACHE_PASSES", "DECODE", "LATENCY", "PROFILING", "STUDY_WRITES", "LedgerTotals", "TimeLedger",
           "charged", "charged_trial"]

DECODE = "decode"  # reading and decoding the images, before the first trial
CACHE_PASSES = "cache passes"  # frozen-prefix activations computed and written (free once cached)
PROFILING = "smart-start profiling"  # the probes that choose the first trials
LATENCY = "latency measurement"  # timing an architecture's exported form, once per architecture
BLOCK_TIMING = "block timing"  # timing a backbone's blocks for the cost model, once per backbone, size and machine
STUDY_WRITES = "study writes"  # telling the study, saving artifacts
TRIAL = "trial"  # a trial's own time: what its phases inside did not take


@dataclass
class _Open:
    """A phase being timed: the time its inner phases took is subtracted when it closes."""

    ledger: TimeLedger
    started: float
    inner: float = 0.0


_OPEN: ContextVar[_Open | None] = ContextVar("automl_tl_open_phase", default=None)
_ACTIVE: ContextVar[TimeLedger | None] = ContextVar("automl_tl_time_ledger", default=None)


@dataclass(frozen=True)
class LedgerTotals:
    """A ledger read at one moment: seconds per phase, seconds per trial (its own), and the time since
    the ledger began."""

    phases: dict[str, float] = field(default_factory=dict)
    trials: dict[int, float] = field(default_factory=dict)
    elapsed: float = 0.0


class TimeLedger:
    """Seconds per named phase and per trial, each charged only its own time (see the module's docstring).
    ``clock`` is a monotonic clock in seconds; tests pass their own."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._phases: dict[str, float] = {}
        self._trials: dict[int, float] = {}
        self.started = clock()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the time of the ``with`` block to ``name``, less the time of phases opened inside it."""
        with self._timed(lambda seconds: self.add(name, seconds)):
            yield

    @contextmanager
    def trial(self, number: int) -> Iterator[None]:
        """Charge the time of the ``with`` block to trial ``number``, less its inner phases (cache passes,
        latency): what the trial's own training and scoring took."""
        with self._timed(lambda seconds: self.add_trial(number, seconds)):
            yield

    @contextmanager
    def _timed(self, charge: Callable[[float], None]) -> Iterator[None]:
        outer = _OPEN.get()
        entry = _Open(self, self._clock())
        token = _OPEN.set(entry)
        try:
            yield
        finally:
            _OPEN.reset(token)
            spent = self._clock() - entry.started
            if outer is not None and outer.ledger is self:
                outer.inner += spent
            charge(max(0.0, spent - entry.inner))

    def add(self, name: str, seconds: float) -> None:
        """Charge ``seconds`` measured elsewhere to phase ``name``."""
        with self._lock:
            self._phases[name] = self._phases.get(name, 0.0) + seconds

    def add_trial(self, number: int, seconds: float) -> None:
        """Charge ``seconds`` measured elsewhere to trial ``number``."""
        with self._lock:
            self._trials[number] = self._trials.get(number, 0.0) + seconds

    def elapsed(self) -> float:
        """Seconds since the ledger began."""
        return self._clock() - self.started

    def totals(self) -> LedgerTotals:
        """What the ledger holds now (a copy)."""
        with self._lock:
            return LedgerTotals(dict(self._phases), dict(self._trials), self.elapsed())

    @contextmanager
    def recording(self) -> Iterator[TimeLedger]:
        """Make this the ledger ``charged`` records into, in this context, for the ``with`` block."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


@contextmanager
def charged(name: str) -> Iterator[None]:
    """Charge the ``with`` block to phase ``name`` of the ledger that is recording in this context; without
    one, time nothing. For code that is not handed the ledger (the cache, the latency measurement)."""
    ledger = _ACTIVE.get()
    if ledger is None:
        yield
        return
    with ledger.phase(name):
        yield


@contextmanager
def charged_trial(number: int) -> Iterator[None]:
    """Charge the ``with`` block to trial ``number`` of the ledger that is recording in this context (less its
    inner phases); without one, time nothing. For the search loop, which is not handed the ledger."""
    ledger = _ACTIVE.get()
    if ledger is None:
        yield
        return
    with ledger.trial(number):
        yield
