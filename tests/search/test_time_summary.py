"""After a search, where the time went: by phase and by kind of trial, adding up to the whole."""

from __future__ import annotations

from io import StringIO

import optuna
from optuna.trial import create_trial
from rich.console import Console

from automl_tl.runtime.time_ledger import CACHE_PASSES, DECODE, LATENCY, PROFILING, STUDY_WRITES, TimeLedger
from automl_tl.tuning.time_summary import time_rows, time_summary_json, time_summary_table


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ledger_of_a_search() -> tuple[TimeLedger, list[optuna.trial.FrozenTrial]]:
    """Decoding 10 s, profiling 2 s, a head-only trial of 3 s (and its 4 s cache pass), a fine-tuning one
    of 20 s (and its 1 s latency measurement), a trial no study knows, 1 s of study writes; 45 s in all."""
    clock = FakeClock()
    ledger = TimeLedger(clock)
    steps = [(DECODE, 10), (PROFILING, 2)]
    for name, seconds in steps:
        with ledger.phase(name):
            clock.now += seconds
    with ledger.trial(0):
        with ledger.phase(CACHE_PASSES):
            clock.now += 4
        clock.now += 3
    with ledger.trial(1):
        with ledger.phase(LATENCY):
            clock.now += 1
        clock.now += 20
    with ledger.trial(7):
        clock.now += 0.5
    with ledger.phase(STUDY_WRITES):
        clock.now += 1
    clock.now += 3.5
    study = optuna.create_study(direction="maximize")
    for kind in ("head-only", "fine-tune"):
        study.add_trial(create_trial(value=0.5, params={}, distributions={}, user_attrs={"kind": kind}))
    return ledger, study.trials


def test_the_rows_add_up_to_the_whole_time_with_each_second_counted_once():
    ledger, trials = ledger_of_a_search()
    rows = {row.key: (row.seconds, row.trials) for row in time_rows(ledger, trials)}
    assert rows == {DECODE: (10, None), CACHE_PASSES: (4, None), PROFILING: (2, None), LATENCY: (1, None),
                    "trials: head-only": (3, 1), "trials: fine-tune": (20, 1), "trials: kind unknown": (0.5, 1),
                    STUDY_WRITES: (1, None), "other": (3.5, None)}
    assert sum(seconds for seconds, _ in rows.values()) == 45


def test_the_table_and_the_json_give_seconds_and_shares():
    ledger, trials = ledger_of_a_search()
    summary = time_summary_json(ledger, trials)
    assert summary["total_seconds"] == 45
    fine_tune = next(row for row in summary["rows"] if row["key"] == "trials: fine-tune")
    assert fine_tune == {"key": "trials: fine-tune", "label": "trials, fine-tune", "seconds": 20, "share": 0.4444,
                         "trials": 1}
    console = Console(file=StringIO(), width=120)
    console.print(time_summary_table(ledger, trials))
    text = console.file.getvalue()
    assert "Where the time went (0:45 in all)" in text
    assert any("trials, fine-tune" in line and "20.0" in line and "44%" in line for line in text.splitlines()), text
    assert any("decoding images" in line and "10.0" in line and "22%" in line for line in text.splitlines()), text


def test_a_longer_whole_time_grows_other():
    ledger, trials = ledger_of_a_search()
    rows = time_rows(ledger, trials, total=60)  # the deadline's clock: the command started before the ledger
    assert rows[-1].key == "other" and rows[-1].seconds == 18.5
