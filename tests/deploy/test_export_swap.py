"""`export --overwrite` under interrupts and kills: the -o folder is always the old export or the complete
new one, and what a killed export leaves beside it is cleared next time, only when its marker proves it ours."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from automl_tl.deploy.export_folder import STAGING_MARKER, check_replaceable, lock_folder
from automl_tl.deploy.export_leftovers import clear_leftovers
from automl_tl.errors import UserError
from automl_tl.runtime import folder_swap
from automl_tl.runtime.interrupts import interrupts_as_keyboard_interrupt
from automl_tl.runtime.owned_files import output_path
from tests.support.export_steps import export_tag, fake_export, stop_at_step

ROOT = Path(__file__).resolve().parents[2]
MODES = ["exchange", "fallback"]


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def no_exchange(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    if mode == "fallback":
        monkeypatch.setattr(folder_swap, "exchange", lambda first, second: False)


def steps_of_one_export(tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> int:
    out = tmp_path / "count" / "out"
    fake_export(out, "old")
    with monkeypatch.context() as patch:
        no_exchange(patch, mode)
        calls = stop_at_step(0, lambda: None, patch=patch.setattr)
        fake_export(out, "new")
    assert export_tag(out) == "new"
    return len(calls)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_an_interrupt_at_any_step_of_export_overwrite_leaves_the_old_or_the_new_export(mode, after, tmp_path,
                                                                                       monkeypatch):
    steps = steps_of_one_export(tmp_path, mode, monkeypatch)
    assert steps >= 5
    for step in range(1, steps + 1):
        out = tmp_path / f"step{step}" / "out"
        fake_export(out, "old")

        def interrupt() -> None:
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            no_exchange(patch, mode)
            stop_at_step(step, interrupt, after=after, patch=patch.setattr)
            with pytest.raises(KeyboardInterrupt):
                fake_export(out, "new")
        assert export_tag(out) in ("old", "new"), f"step {step}: {sorted(out.parent.iterdir())}"
        clear_leftovers(out)
        assert export_tag(out) in ("old", "new") and hidden(out.parent) == [], f"step {step}"


@pytest.mark.parametrize("mode", MODES)
def test_a_real_sigint_during_the_swap_waits_until_the_new_export_is_in_place(mode, tmp_path, monkeypatch):
    out = tmp_path / "out"
    fake_export(out, "old")
    no_exchange(monkeypatch, mode)
    swap_call = "exchange" if mode == "exchange" else "rename"
    real = {"exchange": folder_swap.exchange, "rename": os.rename}[swap_call]

    def swap_then_signal(first, second, *args, **kwargs):
        result = real(first, second, *args, **kwargs)
        if ".previous-" in str(second) or swap_call == "exchange":  # the step that moves the old export away
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(folder_swap if swap_call == "exchange" else os, swap_call, swap_then_signal)
    with interrupts_as_keyboard_interrupt(), pytest.raises(KeyboardInterrupt):
        fake_export(out, "new")
    assert export_tag(out) == "new"


@pytest.mark.parametrize("mode", MODES)
def test_a_kill_at_any_step_of_export_overwrite_loses_neither_export(mode, tmp_path, monkeypatch):
    """SIGKILL just before each file-system change of a real process's export (about 15 short processes)."""
    steps = steps_of_one_export(tmp_path, mode, monkeypatch)
    command = [sys.executable, "-m", "tests.support.export_steps"]
    for step in range(1, steps + 1):
        out = tmp_path / f"step{step}" / "out"
        fake_export(out, "old")
        killed = subprocess.run([*command, str(out), "new", str(step), mode], cwd=ROOT, capture_output=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        found = export_tag(out)
        if found is None:  # only between the two renames of the fallback: the old export waits, complete, aside
            assert mode == "fallback" and not os.path.lexists(out), f"step {step}: {hidden(out.parent)}"
            assert [export_tag(p) for p in out.parent.iterdir() if ".out.previous-" in p.name] == ["old"]
        # The next export to the same place restores or clears what the kill left, then replaces it.
        fake_export(out, "again")
        assert export_tag(out) == "again" and hidden(out.parent) == [], f"step {step}: {hidden(out.parent)}"


def test_stale_staging_folders_are_removed_only_with_the_tools_marker(tmp_path):
    out = tmp_path / "model"
    fake_export(out, "old")
    ours = tmp_path / ".model.exporting-abcd1234"  # what a kill during the model's export leaves
    (ours / "model").mkdir(parents=True)
    (ours / "model" / "weights.bin").write_bytes(os.urandom(1000))
    (ours / STAGING_MARKER).write_text(json.dumps({"kind": "automl-tl export in progress", "target": "model"}))
    users = tmp_path / ".model.exporting-users123"  # the same kind of name, no marker
    users.mkdir()
    (users / "thesis.tex").write_text("mine")
    forged = tmp_path / ".model.previous-zzzz9999"  # an export's marker, but a file it does not list
    fake_export(tmp_path / "copy", "old")
    (tmp_path / "copy").rename(forged)
    (forged / "notes.txt").write_text("mine")
    other = tmp_path / ".modelx.exporting-abcd1234"  # another target's name
    other.mkdir()
    (other / STAGING_MARKER).write_text(json.dumps({"kind": "automl-tl export in progress"}))
    bad_marker = tmp_path / ".model.exporting-badmark1"
    bad_marker.mkdir()
    (bad_marker / STAGING_MARKER).write_text("not ours")

    fake_export(out, "new")
    assert not ours.exists() and export_tag(out) == "new"
    assert (users / "thesis.tex").read_text() == "mine" and (forged / "notes.txt").read_text() == "mine"
    assert other.is_dir() and (bad_marker / STAGING_MARKER).read_text() == "not ours"


def test_a_running_exports_staging_folder_is_left_alone(tmp_path):
    out = tmp_path / "model"
    live = tmp_path / ".model.exporting-live0001"
    live.mkdir()
    (live / STAGING_MARKER).write_text(json.dumps({"kind": "automl-tl export in progress"}))
    lock = lock_folder(live, wait=False)  # what the running export holds
    assert lock is not None
    try:
        assert subprocess.run([sys.executable, "-m", "tests.support.export_steps", str(out), "new", "0", "exchange"],
                              cwd=ROOT).returncode == 0
        assert live.is_dir() and export_tag(out) == "new"
    finally:
        os.close(lock)
    clear_leftovers(out)
    assert not live.exists()


def test_an_old_export_set_aside_by_a_killed_export_is_restored(tmp_path):
    out = tmp_path / "model"
    fake_export(out, "old")
    aside = tmp_path / ".model.previous-0123abcd"
    out.rename(aside)  # a kill between the fallback's two renames
    assert clear_leftovers(out) and export_tag(out) == "old" and hidden(tmp_path) == []


def test_o_naming_a_link_to_an_export_is_refused_and_the_export_kept(tmp_path):
    real = tmp_path / "real-export"
    fake_export(real, "old")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(UserError) as caught:
        fake_export(output_path(str(link)), "new")
    assert f"-o {link} is a symbolic link" in str(caught.value)
    assert link.is_symlink() and export_tag(real) == "old" and hidden(tmp_path) == []


def test_o_naming_a_fifo_is_refused_as_one(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="is a named pipe"):
        check_replaceable(fifo, overwrite=True)


def test_a_finished_export_gets_the_permissions_of_any_new_folder(tmp_path):
    """The staging folder is private (mkdtemp's 0o700) while it is written; the export in place is as
    shareable as any folder the user makes (0o777 less the umask), on a first export and a replacement."""
    out = tmp_path / "out"
    umask = os.umask(0o022)
    try:
        fake_export(out, "old")
        assert out.stat().st_mode & 0o777 == 0o755
        fake_export(out, "new")
        assert out.stat().st_mode & 0o777 == 0o755
    finally:
        os.umask(umask)
