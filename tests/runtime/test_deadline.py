"""The command's deadline: counted from the process's start, seen by code deep down, not an interrupt."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from automl_tl.runtime.deadline import Deadline, DeadlineReached, active, process_start, raise_if_passed, running_under


def test_a_deadline_counts_from_its_start_on_the_monotonic_clock():
    deadline = Deadline.after(10.0, started=time.monotonic() - 4.0)
    assert 5.9 < deadline.remaining() <= 6.0 and 4.0 <= deadline.spent() < 4.1 and not deadline.passed()
    gone = Deadline.after(1.0, started=time.monotonic() - 2.0)
    assert gone.passed() and gone.remaining() == 0.0 and gone.at == gone.started + 1.0


def test_the_process_start_includes_what_ran_before_python_asked():
    """A process that sleeps 1.5 s before it reads its start finds it 1.5 s back (the import time would be now)."""
    code = ("import time; time.sleep(1.5); from automl_tl.runtime.deadline import process_start; "
            "print(time.monotonic() - process_start())")
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 1.5 <= age < 1.5 + 30


def test_the_process_start_reads_a_name_with_spaces_and_parentheses(tmp_path):
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    fields = ["S"] + ["0"] * 18 + [str(int((boot - 7.0) * ticks))] + ["0"] * 20  # field 22 is the start time
    stat = tmp_path / "stat"
    stat.write_text("4242 (odd ) name) " + " ".join(fields))
    assert process_start(stat) == pytest.approx(time.monotonic() - 7.0, abs=0.05)
    assert process_start(tmp_path / "missing") is None
    stat.write_text("garbage")
    assert process_start(stat) is None


def test_running_under_sets_the_active_deadline_for_the_block_only_and_none_lifts_it():
    outer, gone = Deadline.after(100.0), Deadline.after(0.0, started=time.monotonic() - 1.0)
    assert active() is None
    with running_under(outer):
        assert active() is outer
        with running_under(gone):
            with pytest.raises(DeadlineReached, match="while decoding"):
                raise_if_passed(doing="decoding")
            with running_under(None):
                raise_if_passed()  # nothing active: no deadline to pass
        assert active() is outer
    assert active() is None


def test_reaching_the_deadline_is_not_an_interrupt():
    """Ctrl-C paths (KeyboardInterrupt) must not catch it: it is an ordinary exception."""
    assert issubclass(DeadlineReached, Exception) and not issubclass(DeadlineReached, KeyboardInterrupt)
