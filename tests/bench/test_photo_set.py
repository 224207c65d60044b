"""bench/photo_set.py: stamp classes, the copied stamp folder, and the generated photo-shaped JPEGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bench.photo_set import STAMPS_ROOT, stamp_classes, stamps_available, write_photo_set, write_stamps_folder

pytestmark = pytest.mark.skipif(
    not stamps_available(), reason=f"no stamps under {STAMPS_ROOT}: install Debian's tuxpaint-stamps-default")


def test_stamp_classes_finds_several_big_classes() -> None:
    classes = stamp_classes()
    assert len(classes) >= 5
    assert "animals_mammals" in classes
    for name, files in classes.items():
        assert len(files) >= 15, name
        assert files == sorted(files)
        assert all(p.suffix == ".png" and p.is_file() for p in files)
    assert list(classes) == sorted(classes)
    assert stamp_classes() == classes  # deterministic
    assert len(stamp_classes(min_images=100)) < len(classes)


def test_write_stamps_folder_copies_originals_and_is_idempotent(tmp_path: Path) -> None:
    classes = stamp_classes()
    counts = write_stamps_folder(tmp_path, per_class=3)
    assert counts == {name: 3 for name in classes}
    modes = set()
    for name in classes:
        copies = sorted((tmp_path / name).iterdir())
        assert len(copies) == 3
        for original, copy in zip(classes[name][:3], copies):
            assert copy.read_bytes() == original.read_bytes()
            with Image.open(copy) as image, Image.open(original) as source:
                assert image.format == "PNG" and image.size == source.size
                modes.add(image.mode)
    assert "RGBA" in modes  # real transparency (a few stamps are LA or P instead)

    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")}
    assert write_stamps_folder(tmp_path, per_class=3) == counts
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")} == before

    assert write_stamps_folder(tmp_path / "two", per_class=2, classes=["food_fruit"]) == {"food_fruit": 2}
    with pytest.raises(KeyError):
        write_stamps_folder(tmp_path / "none", classes=["no_such_class"])


def _jpegs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.jpg"))}


def test_write_photo_set_is_deterministic_and_resumes(tmp_path: Path) -> None:
    names = list(stamp_classes())
    first = tmp_path / "a"
    assert write_photo_set(first, 12, seed=3, workers=2, show_progress=False) == 12
    files = _jpegs(first)
    assert len(files) == 12
    for path in first.rglob("*.jpg"):
        i = int(path.stem.split("_")[1])
        assert path.parent.name == names[i % len(names)]
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert all(300 <= side <= 800 for side in image.size), image.size
    assert not list(first.rglob("*.part"))

    second = tmp_path / "b"
    assert write_photo_set(second, 12, seed=3, workers=1, show_progress=False) == 12
    assert _jpegs(second) == files  # same seed, same bytes, whatever the number of workers
    other = tmp_path / "c"
    write_photo_set(other, 2, seed=4, workers=1, show_progress=False)
    assert all(files[rel] != data for rel, data in _jpegs(other).items())  # another seed, other images

    victim = sorted(first.rglob("*.jpg"))[5]
    victim.unlink()
    kept = {p: p.stat().st_mtime_ns for p in first.rglob("*.jpg")}
    assert write_photo_set(first, 12, seed=3, workers=2, show_progress=False) == 12
    assert victim.read_bytes() == files[str(victim.relative_to(first))]
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*.jpg") if p != victim} == kept
