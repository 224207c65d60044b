"""After a search, where its time went: by phase (decoding, cache passes, smart-start profiling, block timings,
latency measurement, study writes) and by kind of trial (head-only, fine-tune, scratch), with seconds and shares.

The seconds come from the search's ``TimeLedger``, where every phase is charged only its own time (a cache
pass inside a trial counts as a cache pass, not twice); the trials' kinds from their ``kind`` user
attribute. Whatever no phase covered (waiting for a slot, bookkeeping between trials) is "other", so the
rows add up to the whole time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial
from rich.table import Table

from automl_tl.runtime.shown_text import console_text
from automl_tl.runtime.time_ledger import BLOCK_TIMING, CACHE_PASSES, DECODE, LATENCY, PROFILING, STUDY_WRITES, TimeLedger
from automl_tl.study_record import KIND_ATTR, Failure
from automl_tl.tuning.progress import clock_text
from automl_tl.tuning.retries import NOT_STARTED

__all__ = ["TRIAL_KINDS", "TimeRow", "time_rows", "time_summary_json",
           "time_summary_table", "time_table"]

TRIAL_KINDS = ("head-only", "fine-tune", "scratch")
OTHER = "other"
PHASES = ((DECODE, "decoding images"), (CACHE_PASSES, "cache passes (frozen-prefix activations)"),
          (PROFILING, "smart-start profiling"), (BLOCK_TIMING, "block timings for the cost model"),
          (LATENCY, "latency measurement"))


@dataclass(frozen=True)
class TimeRow:
    """One line of the summary: ``key`` is stable (for JSON), ``label`` is for people; ``trials`` counts the
    trials of a kind (None for a phase)."""

    key: str
    label: str
    seconds: float
    trials: int | None = None


def time_rows(ledger: TimeLedger, trials: Sequence[FrozenTrial], total: float | None = None) -> list[TimeRow]:
    """The summary's rows, in a fixed order, phases that took no time left out; ``total`` is the whole time
    (by default the ledger's; pass the deadline's ``spent()`` to count from the command's start). A trial the
    ledger timed but whose kind is unknown (not in ``trials``, or without the attribute) is "trials, kind
    unknown"."""
    totals = ledger.totals()
    whole = totals.elapsed if total is None else total
    kinds = {t.number: kind_of(t) for t in trials}
    seconds_by_kind: dict[str, float] = {}
    for number, seconds in totals.trials.items():
        kind = kinds.get(number, "kind unknown")
        seconds_by_kind[kind] = seconds_by_kind.get(kind, 0.0) + seconds
    counts = Counter(kinds.get(number, "kind unknown") for number in totals.trials)
    rows = [TimeRow(key, label, totals.phases[key]) for key, label in PHASES if totals.phases.get(key)]
    order = [*TRIAL_KINDS, *sorted(set(seconds_by_kind) - set(TRIAL_KINDS))]
    rows += [TimeRow(f"trials: {kind}", f"trials, {kind}", seconds_by_kind[kind], counts[kind])
             for kind in order if kind in seconds_by_kind]
    known = {key for key, _ in PHASES} | {STUDY_WRITES}
    rows += [TimeRow(name, name, seconds) for name, seconds in sorted(totals.phases.items())
             if name not in known and seconds]  # phases this module has no label for, by their own name
    if totals.phases.get(STUDY_WRITES):
        rows.append(TimeRow(STUDY_WRITES, "study writes and artifacts", totals.phases[STUDY_WRITES]))
    rows.append(TimeRow(OTHER, "other (waiting, bookkeeping)", max(0.0, whole - sum(r.seconds for r in rows))))
    return rows


def kind_of(trial: FrozenTrial) -> str:
    """The summary's kind of a trial: its ``kind``, or "not started" for one too big for the time left (the
    search priced it, and went on without it)."""
    failure = Failure.from_attrs(trial.user_attrs)
    if failure is not None and failure.not_started:
        return NOT_STARTED
    return str(trial.user_attrs.get(KIND_ATTR) or "kind unknown")


def _share(seconds: float, rows: list[TimeRow]) -> float:
    whole = sum(row.seconds for row in rows)
    return seconds / whole if whole > 0 else 0.0


def time_summary_json(ledger: TimeLedger, trials: Sequence[FrozenTrial], total: float | None = None) -> dict[str, Any]:
    """``time_rows`` for ``--json`` and the study (``TIME_SUMMARY_ATTR``): the whole time and one entry per
    row, keyed by ``key``."""
    rows = time_rows(ledger, trials, total)
    return {"total_seconds": round(sum(row.seconds for row in rows), 2),
            "rows": [{"key": row.key, "label": row.label, "seconds": round(row.seconds, 2),
                      "share": round(_share(row.seconds, rows), 4), "trials": row.trials} for row in rows]}


def time_table(summary: dict[str, Any]) -> Table:
    """A ``time_summary_json`` as a table: phase or kind of trial, trials, seconds, share of the whole."""
    table = Table(title=f"Where the time went ({clock_text(_seconds(summary.get('total_seconds')))} in all)")
    table.add_column("where")
    for header in ("trials", "seconds", "share"):
        table.add_column(header, justify="right")
    rows = summary.get("rows")
    for row in rows if isinstance(rows, list) else []:  # a study's attribute, which others may have written
        if isinstance(row, dict):
            trials = row.get("trials")
            table.add_row(console_text(str(row.get("label"))), "" if trials is None else console_text(str(trials)),
                          f"{_seconds(row.get('seconds')):.1f}", f"{_seconds(row.get('share')):.0%}")
    return table


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def time_summary_table(ledger: TimeLedger, trials: Sequence[FrozenTrial], total: float | None = None) -> Table:
    """Where the time went, as a table for the end of a search (see ``time_rows``)."""
    return time_table(time_summary_json(ledger, trials, total))
