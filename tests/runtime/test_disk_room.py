"""One disk reserve and one eviction policy for every store of the cache folder."""

from __future__ import annotations

import re
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from automl_tl.runtime import disk_room
from automl_tl.runtime.disk_room import DISK_RESERVE, StoredEntry, evict_least_recent, room_for

ROOT = Path(__file__).resolve().parents[2]
Usage = namedtuple("Usage", "total used free")


def test_one_reserve_is_defined_and_every_store_uses_it() -> None:
    from automl_tl.cache import store
    from automl_tl.data import image_store

    defined = [str(p.relative_to(ROOT)) for top in ("automl_tl", "plugins") for p in (ROOT / top).rglob("*.py")
               if re.search(r"^\s*\w*DISK\w*RESERVE\w*\s*=", p.read_text(encoding="utf-8"), flags=re.MULTILINE)]
    assert defined == ["automl_tl/runtime/disk_room.py"]
    assert not hasattr(image_store, "DISK_RESERVE") and store.DISK_RESERVE is DISK_RESERVE


def test_both_stores_refuse_at_the_same_free_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_tl.cache.store import DiskStore
    from automl_tl.data import image_store
    from automl_tl.errors import UserError

    needed = 10 * 2**20
    for free, fits in ((DISK_RESERVE + needed - 1, False), (DISK_RESERVE + needed, True)):
        monkeypatch.setattr(shutil, "disk_usage", lambda path, free=free: Usage(0, 0, free))
        assert DiskStore(tmp_path / "activations", 2**40).fits(needed) is fits
        if fits:
            image_store._check_space(tmp_path / "decoded", needed)
        else:
            with pytest.raises(UserError):
                image_store._check_space(tmp_path / "decoded", needed)


def _entries(tmp_path: Path, count: int, size: int) -> list[StoredEntry]:
    return [StoredEntry(float(i), size, tmp_path / f"{i}.npy") for i in range(count)]


def test_the_least_recent_go_first_until_the_limits_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(0, 0, 2**50))
    gone: list[Path] = []
    entries = _entries(tmp_path, 6, 100)
    assert evict_least_recent(reversed(entries), tmp_path, gone.append, max_entries=4) == 2
    assert gone == [entries[0].path, entries[1].path]
    gone.clear()
    assert evict_least_recent(entries, tmp_path, gone.append, max_bytes=350, extra=50, keep=entries[0].path) == 3
    assert gone == [e.path for e in entries[1:4]]  # the kept one stays, the next oldest go


def test_the_disk_reserve_evicts_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(0, 0, disk_room.DISK_RESERVE - 150))
    gone: list[Path] = []
    assert evict_least_recent(_entries(tmp_path, 4, 100), tmp_path, gone.append, max_entries=4) == 2
    assert not room_for(tmp_path, 1) and room_for(tmp_path, 1, reclaimable=200)
