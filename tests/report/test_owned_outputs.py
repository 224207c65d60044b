"""`report -o` and `show --plot` write only what they own: their own earlier file without asking, a file of
the user's only with --overwrite, never a link, device, FIFO or folder; and the plot's printed name is the
file really written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import create_trial

from automl_tl.cli import main
from automl_tl.report.page import LEGACY_PAGE_HEAD, report_is_ours
from automl_tl.report.plot_file import plot_is_ours
from automl_tl.runtime.owned_files import read_ends
from automl_tl.study_record import LATENCY_ATTR


@pytest.fixture
def timed_study(isolated_studies: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A study "t" of three completed trials with measured latencies, in the isolated studies folder."""
    from automl_tl.storage.urls import open_storage, storage_url

    study = optuna.create_study(study_name="t", storage=open_storage(storage_url("t", None)), direction="maximize")
    distributions = {"backbone": CategoricalDistribution(["fast", "big"])}
    for value, ms, backbone in ((0.9, 3.0, "fast"), (0.8, 1.0, "fast"), (0.93, 80.0, "big")):
        study.add_trial(create_trial(value=value, params={"backbone": backbone}, distributions=distributions,
                                     user_attrs={LATENCY_ATTR: ms, "val_accuracy": value}))
    monkeypatch.chdir(tmp_path)
    return "t"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def writers(target: Path) -> list[list[str]]:
    return [["report", "t", "-o", str(target)], ["show", "t", "--plot", str(target)]]


def test_a_file_of_the_users_is_replaced_only_with_overwrite(timed_study, tmp_path, capsys):
    for argv in writers(tmp_path / "mine.png"):
        mine = tmp_path / "mine.png"
        mine.write_text("my picture")
        code, text = run(capsys, *argv)
        assert code == 2 and "automl-tl did not write it" in text and "--overwrite" in text, text
        assert mine.read_text() == "my picture"
        code, text = run(capsys, *argv, "--overwrite")
        assert code == 0, text
        assert mine.read_bytes() != b"my picture"


def test_its_own_earlier_report_and_plot_are_replaced_without_asking(timed_study, tmp_path, capsys):
    for name in ("r.html", "p.png", "p.svg", "p.pdf"):
        target = tmp_path / name
        argv = ["report", "t", "-o", str(target)] if name.endswith(".html") else ["show", "t", "--plot", str(target)]
        assert run(capsys, *argv)[0] == 0
        recognise = report_is_ours if name.endswith(".html") else plot_is_ours
        assert recognise(*read_ends(target)), name
        target.chmod(0o600)
        first = target.stat().st_ino
        code, text = run(capsys, *argv)
        assert code == 0, text
        assert target.stat().st_ino != first and stat.S_IMODE(target.stat().st_mode) == 0o600  # a new file, same mode


def test_a_report_written_before_the_mark_is_still_recognised(tmp_path):
    old = tmp_path / "old.html"
    old.write_text(LEGACY_PAGE_HEAD + "s</title></head><body></body></html>")
    assert report_is_ours(*read_ends(old))
    assert not report_is_ours(b"<!DOCTYPE html><html><head><title>my page</title>", b"")
    assert not plot_is_ours(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, b"")


@pytest.mark.parametrize("make", ["fifo", "link-to-fifo", "link-to-own", "link-outside", "folder"])
def test_special_targets_are_refused_with_overwrite_too(make, timed_study, tmp_path, capsys):
    for argv in writers(tmp_path / "target.png"):
        place = tmp_path / make
        place.mkdir()
        target = place / "target.png"
        elsewhere = tmp_path / f"elsewhere-{argv[0]}"
        if make == "fifo":
            os.mkfifo(target)
        elif make == "folder":
            target.mkdir()
        else:
            pointed = {"link-to-fifo": place / "pipe", "link-to-own": place / "own.png", "link-outside": elsewhere}[make]
            if make == "link-to-fifo":
                os.mkfifo(pointed)
            else:
                pointed.write_text("pointed at")
            target.symlink_to(pointed)
        argv[-1] = str(target)
        before = {p.name: stat.S_IFMT(p.lstat().st_mode) for p in place.iterdir()}
        code, text = run(capsys, *argv, "--overwrite")
        assert code == 2 and "nothing was written" in text and "Traceback" not in text, text
        assert {p.name: stat.S_IFMT(p.lstat().st_mode) for p in place.iterdir()} == before
        assert not elsewhere.exists() or elsewhere.read_text() == "pointed at"
        for path in place.iterdir():
            path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
        place.rmdir()


def test_show_plot_names_the_file_it_really_writes(timed_study, tmp_path, capsys):
    folder = tmp_path / "plots"
    folder.mkdir()
    code, text = run(capsys, "show", "t", "--plot", str(folder))
    assert code == 2 and f"--plot {folder} is a folder" in text and str(folder / "latency.png") in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots", "studies"]  # no plots.png beside it

    code, text = run(capsys, "show", "t", "--plot", str(tmp_path / "trade"))
    assert code == 0 and f"drawn into {tmp_path / 'trade.png'}" in text, text
    assert (tmp_path / "trade.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "trade").exists()

    code, text = run(capsys, "show", "t", "--plot", str(tmp_path / "trade.jpg"))
    assert code == 2 and "cannot be written as a .jpg file" in text and not (tmp_path / "trade.jpg").exists()


def test_a_special_file_named_without_an_extension_is_refused_not_written_beside(timed_study, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, text = run(capsys, "show", "t", "--plot", str(fifo))
    assert code == 2 and "named pipe" in text and not (tmp_path / "pipe.png").exists()
