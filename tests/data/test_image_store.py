"""The decoded-image store: decoded once, memory-mapped, keyed by content, size and rule; shared safely."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from automl_tl.data import FolderDataset, image_store
from automl_tl.data.loader import load_table
from automl_tl.data.pages import read_rows, release
from automl_tl.runtime import disk_room
from automl_tl.runtime.notices import NoticeInbox
from automl_tl.types import ResizeRule
from tests.support.images import make_class_tree, write_image


def photo_tree(root: Path) -> Path:
    """Three classes of 8 photos of mixed shapes (JPEG and PNG, some with alpha)."""
    seed = 0
    for name in ("cat", "dog", "owl"):
        for i in range(8):
            size = [(90, 30), (30, 90), (64, 48), (50, 50)][i % 4]
            suffix = ".jpg" if i % 2 else ".png"
            mode = "RGBA" if (i % 3 == 0 and suffix == ".png") else "RGB"
            write_image(root / name / f"{i}{suffix}", mode=mode, size=size, seed=seed)
            seed += 1
    return root


def load(root: Path, store: Path, size: int = 24, rule: ResizeRule | None = None):
    return load_table(FolderDataset().discover(str(root)), size, show_progress=False, rule=rule, store=store)


def test_a_second_load_decodes_nothing_and_maps_the_same_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    first = load(data, store)
    assert first.decoded_now == 24 and isinstance(first.images, np.memmap)
    calls = []
    monkeypatch.setattr(image_store, "decode_image", lambda *a, **k: calls.append(1))
    second = load(data, store)
    assert calls == [] and second.decoded_now == 0
    assert np.array_equal(np.asarray(first.images), np.asarray(second.images))
    assert second.manifest_hash == first.manifest_hash and second.relpaths == first.relpaths
    assert not second.images.flags.writeable  # nobody can change the shared store through a table


def test_the_key_follows_contents_size_and_rule(tmp_path: Path) -> None:
    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    load(data, store)
    assert load(data, store, size=32).decoded_now == 24  # another size: another entry
    assert load(data, store, rule=ResizeRule("pad")).decoded_now == 24  # another rule too
    write_image(data / "cat" / "0.png", size=(40, 40), seed=999)  # one image changes
    changed = load(data, store)
    assert changed.decoded_now == 24
    assert len(list(store.glob("*.npy"))) == image_store.KEEP_ENTRIES  # older entries were deleted


def test_bad_images_are_remembered_and_the_rest_compacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_class_tree(tmp_path / "data", {"a": 30, "b": 30, "c": 30})
    (data / "a" / "000.png").write_bytes(b"not an image")
    store = tmp_path / "store"
    first = load(data, store)
    assert len(first.images) == 89 and [p for p, _ in first.skipped] == ["a/000.png"]
    monkeypatch.setattr(image_store, "decode_image", lambda *a, **k: pytest.fail("decoded again"))
    second = load(data, store)
    assert second.skipped == first.skipped and np.array_equal(np.asarray(second.images), np.asarray(first.images))
    # The rows are the images in data set order, without the bad one.
    monkeypatch.undo()
    from automl_tl.data.images import decode_image

    row = first.relpaths.index("b/005.png")
    assert np.array_equal(first.images[row], decode_image((data / "b" / "005.png").read_bytes(), 24))


def test_a_killed_decode_leaves_nothing_that_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    real = image_store.decode_image
    seen = []

    def dies_halfway(*args, **kwargs):
        seen.append(1)
        if len(seen) == 12:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(image_store, "decode_image", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        load(data, store)
    assert list(store.glob("*.npy")) == []  # no entry, and no partial file left behind
    monkeypatch.setattr(image_store, "decode_image", real)
    assert load(data, store).decoded_now == 24


def test_too_little_disk_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_tl.errors import UserError

    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    monkeypatch.setattr(disk_room, "DISK_RESERVE", 1 << 60)
    with pytest.raises(UserError, match="AUTOML_TL_CACHE_DIR") as info:
        load(data, store)
    assert str(store) in str(info.value)


def _load_in_process(args: tuple[str, str]) -> tuple[int, str]:
    data, store = args
    table = load(Path(data), Path(store))
    return table.decoded_now, str(np.asarray(table.images).sum())


def test_two_workers_decoding_at_once_share_one_entry(tmp_path: Path) -> None:
    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_load_in_process, [(str(data), str(store))] * 2)
    assert len({total for _, total in results}) == 1  # the same pixels
    assert len(list(store.glob("*.npy"))) == 1 and not list(store.glob(".partial-*"))
    assert load(data, store).decoded_now == 0


def test_reading_rows_releases_the_mapping(tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(64, 256, 1024))
    array[:] = 7
    del array
    mapped = np.load(path, mmap_mode="r")
    rows = read_rows(mapped, 0, 16)
    assert rows.shape == (16, 256, 1024) and int(rows[3, 2, 1]) == 7 and rows.flags.writeable
    release(mapped)
    release(np.zeros(3))  # not a mapping: nothing happens
    assert int(mapped[63, 255, 1023]) == 7  # still readable after its pages were dropped


def test_eviction_and_clearing_never_touch_files_that_are_not_entries(tmp_path: Path) -> None:
    from automl_tl.cache.store import DiskStore, clear_folder

    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    store.mkdir()
    (store / "mine.json").write_text("{}")
    (store / "mine.npy").write_bytes(b"the user's own file")
    for size in (16, 20, 24, 28, 32, 36):  # more entries than are kept: the oldest are evicted
        load(data, store, size=size)
    assert len([p for p in store.glob("*.npy") if p.stem != "mine"]) == image_store.KEEP_ENTRIES
    assert (store / "mine.json").is_file() and (store / "mine.npy").read_bytes() == b"the user's own file"
    cache = DiskStore(tmp_path / "cache", max_bytes=1)
    cache.root.mkdir()
    (cache.root / "notes.npy").write_bytes(b"keep")
    cache.evict()
    clear_folder(cache.root)
    assert (cache.root / "notes.npy").read_bytes() == b"keep"


def _damage_every_entry(store: Path, how: str, rng: np.random.Generator) -> None:
    for path in store.glob("*.npy"):
        data = bytearray(path.read_bytes())
        if how == "flipped bytes":
            for index in rng.integers(128, len(data), 3):
                data[index] ^= 0x10
        elif how == "random pixels":  # the same size and dtype: only the content tells
            data[128:] = rng.integers(0, 256, len(data) - 128, dtype=np.uint8).tobytes()
        elif how == "2 KB in the middle":
            middle = len(data) // 2
            data[middle - 1024:middle + 1024] = rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
        else:  # truncated
            data = data[: len(data) // 2]
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["flipped bytes", "random pixels", "2 KB in the middle", "truncated"])
def test_a_damaged_entry_is_decoded_again_and_said_once(inbox: NoticeInbox, tmp_path: Path, how: str) -> None:
    from automl_tl.data import checksums

    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    clean = np.array(load(data, store).images)
    _damage_every_entry(store, how, np.random.default_rng(0))
    checksums.forget()  # what a new process knows
    inbox.take()
    again = load(data, store)
    assert again.decoded_now == 24 and np.array_equal(np.asarray(again.images), clean)
    notices = inbox.take()
    assert len(notices) == 1 and notices[0].startswith(f"1 cache entry in {store} ")
    checksums.forget()
    assert load(data, store).decoded_now == 0 and inbox.take() == []


def test_swapped_missing_or_damaged_sidecars_are_not_trusted(inbox: NoticeInbox, tmp_path: Path) -> None:
    from automl_tl.data import checksums

    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    small, large = np.array(load(data, store, size=16).images), np.array(load(data, store, size=24).images)
    (a, b) = sorted(store.glob("*.json"))
    a_text, b_text = a.read_text(), b.read_text()
    a.write_text(b_text)
    b.write_text(a_text)
    checksums.forget()
    inbox.take()
    assert np.array_equal(np.asarray(load(data, store, size=16).images), small)
    assert np.array_equal(np.asarray(load(data, store, size=24).images), large)
    assert inbox.take()[0].startswith("2 cache entries")
    for sidecar, damage in ((store / f"{a.stem}.json", "{broken"), (store / f"{b.stem}.json", None)):
        if damage is None:
            sidecar.unlink()
        else:
            sidecar.write_text(damage)
    checksums.forget()
    assert load(data, store, size=16).decoded_now == 24 and load(data, store, size=24).decoded_now == 24
    assert inbox.take()[0].startswith("2 cache entries")


def test_a_sidecar_changed_into_other_valid_json_is_not_believed(inbox: NoticeInbox, tmp_path: Path) -> None:
    import json

    from automl_tl.data import checksums

    data, store = photo_tree(tmp_path / "data"), tmp_path / "store"
    first = load(data, store)
    (sidecar,) = store.glob("*.json")
    meta = json.loads(sidecar.read_text())
    meta["kept"] = [meta["kept"][1], meta["kept"][0], *meta["kept"][2:]]  # two images' labels swapped
    sidecar.write_text(json.dumps(meta))
    checksums.forget()
    inbox.take()
    again = load(data, store)
    assert again.decoded_now == 24 and again.relpaths == first.relpaths and len(inbox.take()) == 1
