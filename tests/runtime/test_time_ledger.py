"""The time ledger: each phase charged only its own time, and only in the context that records into it."""

from __future__ import annotations

import threading

from automl_tl.runtime.time_ledger import CACHE_PASSES, DECODE, LATENCY, TimeLedger, charged


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_phase_inside_another_is_taken_out_of_it():
    clock = FakeClock()
    ledger = TimeLedger(clock)
    with ledger.phase(DECODE):
        clock.now += 4
    with ledger.trial(3):
        clock.now += 2
        with ledger.phase(CACHE_PASSES):
            clock.now += 5
            with ledger.phase(LATENCY):
                clock.now += 1
        clock.now += 1
    with ledger.trial(3):  # a trial given back and run again adds up
        clock.now += 0.5
    clock.now += 10  # nobody's: the summary's "other"
    totals = ledger.totals()
    assert totals.phases == {DECODE: 4, CACHE_PASSES: 5, LATENCY: 1}
    assert totals.trials == {3: 3.5} and totals.elapsed == 23.5


def test_a_phase_that_raises_is_still_charged():
    clock = FakeClock()
    ledger = TimeLedger(clock)
    try:
        with ledger.trial(0):
            clock.now += 2
            raise RuntimeError("the trial failed")
    except RuntimeError:
        pass
    assert ledger.totals().trials == {0: 2}


def test_charged_records_into_the_ledger_of_its_context_only():
    clock = FakeClock()
    with charged(CACHE_PASSES):  # no ledger recording: nothing to charge, nothing fails
        clock.now += 1
    first, second = TimeLedger(clock), TimeLedger(clock)
    with first.recording():
        with charged(CACHE_PASSES):
            clock.now += 2
        with second.recording():
            with charged(CACHE_PASSES):
                clock.now += 3
        with first.trial(0), charged(CACHE_PASSES):  # inside a trial: taken out of the trial's time
            clock.now += 4
    with charged(CACHE_PASSES):  # the recording ended
        clock.now += 8
    assert first.totals().phases == {CACHE_PASSES: 6} and first.totals().trials == {0: 0}
    assert second.totals().phases == {CACHE_PASSES: 3}


def test_a_new_thread_records_into_no_ledger():
    def work() -> None:
        with charged(CACHE_PASSES):
            pass

    ledger = TimeLedger()
    with ledger.recording():
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
    assert ledger.totals().phases == {}
