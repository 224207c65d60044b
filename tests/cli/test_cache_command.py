"""``automl-tl cache``: where the caches are, what they hold, and ``--clear`` removing only automl-tl's own files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from automl_tl.cli import main

ACTIVATION, DECODED = "a" * 40, "b" * 40


def write_entry(folder: Path, stem: str, rows: int) -> int:
    """An entry as the stores write it (a digest-named .npy and its .json sidecar); returns its bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{stem}.npy", np.zeros((rows, 4), np.float16))
    (folder / f"{stem}.json").write_text("{}")
    return (folder / f"{stem}.npy").stat().st_size + 2


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(root))
    monkeypatch.setenv("AUTOML_TL_CACHE_GB", "3")
    return root


def shown(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    assert main(["cache", "--json"]) == 0
    return {row["cache"]: row for row in json.loads(capsys.readouterr().out)}


def test_cache_shows_each_folder_its_entries_and_size_and_creates_nothing(cache_root, capsys):
    rows = shown(capsys)
    assert rows["activations"]["path"] == str(cache_root) and rows["activations"]["entries"] == 0
    assert rows["decoded images"]["path"] == str(cache_root / "decoded")
    assert rows["activations"]["limit_bytes"] == 3 * 2**30 and rows["activations"]["dtype"] == "float16"
    assert not cache_root.exists(), "looking must not create the cache folder"

    activation_bytes = write_entry(cache_root, ACTIVATION, 10)
    decoded_bytes = write_entry(cache_root / "decoded", DECODED, 20)
    (cache_root / "notes.npy").write_bytes(b"the user's own")
    rows = shown(capsys)
    assert (rows["activations"]["entries"], rows["activations"]["bytes"]) == (1, activation_bytes)
    assert (rows["decoded images"]["entries"], rows["decoded images"]["bytes"]) == (1, decoded_bytes)

    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(cache_root) in out and "3.0 GB, float16" in out


def test_clear_removes_only_automl_tls_entries_and_stale_partial_writes(cache_root, capsys):
    write_entry(cache_root, ACTIVATION, 10)
    write_entry(cache_root / "decoded", DECODED, 20)
    (cache_root / "notes.npy").write_bytes(b"the user's own")
    (cache_root / "mine").mkdir()
    stale, running = cache_root / ".partial-old.npy", cache_root / "decoded" / ".partial-123-x.json"
    stale.write_bytes(b"left by a killed process")
    running.write_bytes(b"a search is writing this")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (day_ago, day_ago))

    assert main(["cache", "--clear"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert not list(cache_root.glob(f"{ACTIVATION}.*")) and not list((cache_root / "decoded").glob(f"{DECODED}.*"))
    assert not stale.exists(), "a partial write of a killed process is automl-tl's litter"
    assert running.exists(), "a recent partial write may belong to a running search"
    assert (cache_root / "notes.npy").read_bytes() == b"the user's own" and (cache_root / "mine").is_dir()
    rows = shown(capsys)
    assert rows["activations"]["entries"] == rows["decoded images"]["entries"] == 0


def test_clear_works_even_when_the_cache_settings_are_wrong(cache_root, capsys, monkeypatch):
    write_entry(cache_root, ACTIVATION, 10)
    monkeypatch.setenv("AUTOML_TL_CACHE_GB", "lots")
    assert main(["cache"]) == 2
    assert "AUTOML_TL_CACHE_GB" in capsys.readouterr().err
    assert main(["cache", "--clear", "--json"]) == 0
    removed = {row["cache"]: row for row in json.loads(capsys.readouterr().out)}
    assert removed["activations"]["removed_entries"] == 1 and removed["decoded images"]["removed_entries"] == 0
    assert not (cache_root / f"{ACTIVATION}.npy").exists()
