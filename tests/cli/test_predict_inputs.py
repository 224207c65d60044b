"""``predict``'s inputs: a FIFO or a device is refused by its kind and never opened (nothing blocks or reads
forever); a file that cannot be classified is reported and makes the exit code 2, while the other files'
predictions are still printed, as text and in the JSON."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

from automl_tl.cli import main
from automl_tl.deploy.predict import read_regular_file
from tests.support.images import write_image


@pytest.fixture
def export(small_cnn_exports: Path, tmp_path: Path) -> Path:
    target = tmp_path / "export"
    shutil.copytree(small_cnn_exports / "onnx", target)
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def finishes(work, seconds: float = 60.0) -> bool:
    """Run ``work`` on a daemon thread; False if it is still running after ``seconds`` (it blocked)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


class Blocked(Exception):
    pass


def raise_blocked(signum: int, frame: object) -> None:
    raise Blocked("predict blocked on the FIFO")


def test_a_fifo_is_refused_by_its_kind_without_being_opened(capsys, export, tmp_path):
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    previous = signal.signal(signal.SIGALRM, raise_blocked)  # main() must run on the main thread: a watchdog instead
    signal.alarm(60)
    try:
        code, out, err = run(capsys, "predict", str(export), str(fifo))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 2 and f"{fifo}: this is a named pipe (FIFO), not a regular file" in err, err
    assert "no such file" not in err and out == ""


def test_dev_zero_is_refused_as_a_character_device(capsys, export):
    code, out, err = run(capsys, "predict", str(export), "/dev/zero")
    assert code == 2 and "/dev/zero: this is a character device, not a regular file, so it is not read" in err, err
    assert "no such file" not in err


def test_a_missing_path_still_says_so(capsys, export, tmp_path):
    code, _, err = run(capsys, "predict", str(export), str(tmp_path / "nothing.png"))
    assert code == 2 and "nothing.png: no such file or folder" in err


def test_a_file_swapped_for_a_fifo_after_listing_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "later.png"
    os.mkfifo(fifo)
    raised: list[BaseException] = []

    def read() -> None:
        try:
            read_regular_file(fifo)
        except Exception as exc:  # noqa: BLE001 - the test looks at what it was
            raised.append(exc)

    try:
        assert finishes(read, 30), "reading the FIFO blocked"
    finally:
        if raised == []:  # unblock a reader stuck in open() so the thread can end
            with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                pass
    assert raised and "named pipe (FIFO), not a regular file" in str(raised[0])


def test_an_unclassifiable_file_makes_exit_2_and_the_good_files_are_still_predicted(capsys, export, tmp_path):
    good = write_image(tmp_path / "in" / "good.png", size=(30, 30))
    bad = tmp_path / "in" / "bad.png"
    bad.write_bytes(b"not an image")
    code, out, err = run(capsys, "predict", str(export), str(good), str(bad))
    assert code == 2, err
    assert f"{good}: " in out and f"{bad}: unreadable (not a JPEG or PNG image" in out
    assert "1 of 2 file(s) could not be classified (marked unreadable above" in err, err

    code, out, err = run(capsys, "predict", str(export), str(tmp_path / "in"), "--json")
    results = {Path(r["path"]).name: r for r in json.loads(out)}
    assert code == 2 and "top" in results["good.png"] and "not a JPEG or PNG" in results["bad.png"]["error"]
    assert 'each has an "error" with the reason in the JSON' in err

    code, out, _ = run(capsys, "predict", str(export), str(good))
    assert code == 0 and f"{good}: " in out


def test_read_regular_file_reads_a_regular_file(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"abc")
    assert read_regular_file(path) == b"abc"
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing.png")
