"""``automl-tl cache``: where the caches are, what they hold, and ``--clear`` removing only automl-tl's own files."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from automl_tl.cache.store import ActivationKey, DiskStore
from automl_tl.cli import main
from automl_tl.data import FolderDataset, load_table
from automl_tl.data.cache_entries import new_array_file
from tests.support.images import make_class_tree

KEY = ActivationKey("numpy", "linear", "w", 8, "scale", "imgs", "block:1")
USER_LOOKALIKES = ("0123456789abcdef0123456789abcdef01234567.json", "0123456789abcdef0123456789abcdef01234567.npy",
                   ".partial-mythesis.tex", ".partial-old.npy", ".partial-123-x.json", "notes.npy")


def write_entry(folder: Path, rows: int) -> int:
    """An activation entry written by the cache itself; returns its bytes (the sidecar's included)."""
    store = DiskStore(folder, 2**30)
    writer = store.writer(KEY, (rows, 4))
    writer.write(0, np.zeros((rows, 4), np.float32))
    writer.commit()
    path = store.path(KEY)
    return path.stat().st_size + path.with_suffix(".json").stat().st_size


def write_decoded_entry(folder: Path, data: Path) -> int:
    """A decoded-image entry written by the store itself; returns its bytes (the sidecar's included)."""
    make_class_tree(data, {"cat": 4, "dog": 4})
    load_table(FolderDataset().discover(str(data)), 8, show_progress=False, store=folder, max_bad_fraction=1.0)
    return sum(path.stat().st_size for path in folder.iterdir() if path.suffix in (".npy", ".json"))


def seed_user_files(folder: Path, age_s: float = 2 * 24 * 3600) -> dict[Path, bytes]:
    """Files of the user's named like entries and partial writes, made to look old; returns their contents."""
    folder.mkdir(parents=True, exist_ok=True)
    seeded = {}
    for name in USER_LOOKALIKES:
        content = b'{"mine": true}' if name.endswith(".json") else f"the user's own {name}".encode()
        (folder / name).write_bytes(content)
        old = time.time() - age_s
        os.utime(folder / name, (old, old))
        seeded[folder / name] = content
    return seeded


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(root))
    monkeypatch.setenv("AUTOML_TL_CACHE_GB", "3")
    return root


def shown(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    assert main(["cache", "--json"]) == 0
    return {row["cache"]: row for row in json.loads(capsys.readouterr().out)}


def test_cache_shows_each_folder_its_entries_and_size_and_creates_nothing(cache_root, capsys, tmp_path):
    rows = shown(capsys)
    assert rows["activations"]["path"] == str(cache_root) and rows["activations"]["entries"] == 0
    assert rows["decoded images"]["path"] == str(cache_root / "decoded")
    assert rows["activations"]["limit_bytes"] == 3 * 2**30 and rows["activations"]["dtype"] == "float16"
    assert not cache_root.exists(), "looking must not create the cache folder"

    activation_bytes = write_entry(cache_root, 10)
    decoded_bytes = write_decoded_entry(cache_root / "decoded", tmp_path / "data")
    seed_user_files(cache_root)
    seed_user_files(cache_root / "decoded")
    rows = shown(capsys)
    assert (rows["activations"]["entries"], rows["activations"]["bytes"]) == (1, activation_bytes)
    assert (rows["decoded images"]["entries"], rows["decoded images"]["bytes"]) == (1, decoded_bytes)

    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(cache_root) in out and "3.0 GB, float16" in out


def test_clear_removes_only_entries_and_partial_writes_that_prove_they_are_automl_tls(cache_root, capsys, tmp_path):
    write_entry(cache_root, 10)
    write_decoded_entry(cache_root / "decoded", tmp_path / "data")
    ours = [*cache_root.glob("*.*"), *(cache_root / "decoded").glob("*.*")]
    user_files = {**seed_user_files(cache_root), **seed_user_files(cache_root / "decoded")}
    (cache_root / "mine").mkdir()
    stale, _ = new_array_file(cache_root / "decoded", (3, 2), np.uint8)  # left by a killed decode
    running, _ = new_array_file(cache_root, (3, 2), np.float16)  # a running search is writing this
    day_ago = time.time() - 2 * 24 * 3600
    for path in (stale, stale.with_name(stale.name + ".json")):
        os.utime(path, (day_ago, day_ago))

    assert main(["cache", "--clear"]) == 0
    out = capsys.readouterr().out
    assert "activations: removed 1 entries" in out and "decoded images: removed 1 entries" in out
    assert len(ours) == 4 and not any(path.exists() for path in ours)
    assert not stale.exists() and not stale.with_name(stale.name + ".json").exists(), \
        "a partial write of a killed process, proven by its marker, is automl-tl's litter"
    assert running.exists(), "a recent partial write may belong to a running search"
    for path, content in user_files.items():
        assert path.read_bytes() == content, f"{path.name} is the user's and must survive"
    assert (cache_root / "mine").is_dir()
    rows = shown(capsys)
    assert rows["activations"]["entries"] == rows["decoded images"]["entries"] == 0


def test_clear_removes_the_entries_older_automl_tl_wrote_without_checksums(cache_root, capsys):
    legacy = {"framework": "numpy", "backbone": "linear", "weights": "w", "image_size": 8, "preprocessing": "scale",
              "images": "imgs", "block": "block:1"}
    name = hashlib.sha256(json.dumps({"format": 2, **legacy}, sort_keys=True).encode()).hexdigest()[:40]
    cache_root.mkdir()
    np.save(cache_root / f"{name}.npy", np.zeros((3, 4), np.float16))
    (cache_root / f"{name}.json").write_text(json.dumps({**legacy, "shape": [3, 4], "dtype": "float16"}))
    decoded = {"version": 1, "decoder": "d", "image_size": 8, "rule": "r", "max_pixels": 1, "kept": [0], "reasons": []}
    (cache_root / "decoded").mkdir()
    np.save(cache_root / "decoded" / f"{'c' * 40}.npy", np.zeros((1, 8, 8, 3), np.uint8))
    (cache_root / "decoded" / f"{'c' * 40}.json").write_text(json.dumps(decoded))
    forged = {**legacy, "shape": [3, 4], "dtype": "float16"}  # the right fields under a name that is not their digest
    (cache_root / f"{'d' * 40}.json").write_text(json.dumps(forged))
    assert main(["cache", "--clear", "--json"]) == 0
    removed = {row["cache"]: row["removed_entries"] for row in json.loads(capsys.readouterr().out)}
    assert removed["activations"] == removed["decoded images"] == 1
    assert sorted(p.name for p in cache_root.rglob("*") if p.is_file()) == [f"{'d' * 40}.json"]


def test_clear_works_even_when_the_cache_settings_are_wrong(cache_root, capsys, monkeypatch):
    write_entry(cache_root, 10)
    monkeypatch.setenv("AUTOML_TL_CACHE_GB", "lots")
    assert main(["cache"]) == 2
    assert "AUTOML_TL_CACHE_GB" in capsys.readouterr().err
    assert main(["cache", "--clear", "--json"]) == 0
    removed = {row["cache"]: row for row in json.loads(capsys.readouterr().out)}
    assert removed["activations"]["removed_entries"] == 1 and removed["decoded images"]["removed_entries"] == 0
    assert not DiskStore(cache_root, 2**30).path(KEY).exists()


def test_clear_removes_the_latency_file_only_when_it_is_one(cache_root, capsys):
    latency = cache_root / "latency"
    latency.mkdir(parents=True)
    (latency / "latency.json").write_text("my own notes, not measurements")
    stale = latency / ".partial-abc.json"
    stale.write_text(json.dumps({"format": 1, "entries": {}}))
    lookalike = latency / ".partial-mine.json"
    lookalike.write_text(json.dumps({"format": 1, "entries": {}, "mine": True}))
    day_ago = time.time() - 2 * 24 * 3600
    for path in (stale, lookalike):
        os.utime(path, (day_ago, day_ago))
    assert main(["cache", "--clear", "--json"]) == 0
    removed = {row["cache"]: row for row in json.loads(capsys.readouterr().out)}
    assert removed["latency"]["removed_entries"] == 0 and removed["latency"]["removed_bytes"] == 0
    assert (latency / "latency.json").read_text() == "my own notes, not measurements" and lookalike.exists()
    assert not stale.exists()
    (latency / "latency.json").write_text(json.dumps({"format": 1, "entries": {"k": {"latency": {"batch_1_ms": 1.0}}}}))
    assert main(["cache", "--clear", "--json"]) == 0
    removed = {row["cache"]: row for row in json.loads(capsys.readouterr().out)}
    assert removed["latency"]["removed_entries"] == 1 and not (latency / "latency.json").exists()
