"""Real colour images for benchmarks, from Debian's tuxpaint-stamps-default package.

Two kinds of image folder (one sub-folder per class, as ``automl-tl search FOLDER`` expects):

* ``stamps``: the original stamp PNGs (mostly RGBA with transparency, a few hundred pixels wide),
  copied unchanged; one class per two-level stamp folder such as ``animals/mammals``.
* ``photos``: "photo-shaped" JPEGs of any count: each pastes one stamp, scaled, shifted and slightly
  rotated, over a varied background on a canvas of random size and aspect ratio. Image ``i`` depends
  only on the seed and ``i``, so generation can be resumed and split over processes.

    .venv/bin/python bench/photo_set.py photos /tmp/photos --count 2000 [--seed 0] [--workers 2]
    .venv/bin/python bench/photo_set.py stamps /tmp/stamps [--per-class 10]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

STAMPS_ROOT = Path("/usr/share/tuxpaint/stamps")

_NOISE_SIDE = 1024  # side of the per-process noise texture; larger than any canvas
_NOISE_SEED = 0x5EED_0415  # the texture is the same in every process and every run


def stamps_available(root: Path = STAMPS_ROOT) -> bool:
    """Whether the tuxpaint stamps are installed (at least one PNG two folders below ``root``)."""
    return root.is_dir() and next(root.glob("*/*/**/*.png"), None) is not None


def _class_dirs(root: Path) -> Iterator[tuple[str, Path]]:
    """Each two-level folder below ``root`` and its class name (``animals/mammals`` -> ``animals_mammals``)."""
    if not root.is_dir():
        return
    for top in sorted(p for p in root.iterdir() if p.is_dir()):
        for sub in sorted(p for p in top.iterdir() if p.is_dir()):
            yield f"{top.name}_{sub.name}", sub


def stamp_classes(root: Path = STAMPS_ROOT, min_images: int = 15) -> dict[str, list[Path]]:
    """Classes of stamps: each two-level folder below ``root`` with at least ``min_images`` PNGs.

    The class ``animals_mammals`` holds every ``*.png`` anywhere under ``root/animals/mammals``, sorted.
    PNGs directly in a first-level folder belong to no class. Classes come sorted by name.
    """
    classes: dict[str, list[Path]] = {}
    for name, folder in _class_dirs(root):
        files = sorted(p for p in folder.rglob("*.png") if p.is_file())
        if len(files) >= min_images:
            classes[name] = files
    return dict(sorted(classes.items()))


def _stamp_copy_name(path: Path, class_dir: Path) -> str:
    """File name of a stamp in the flat class folder: its path below the class folder, joined by ``_``.

    Deeper folders repeat names (``symbols/money/euro/coins/001.png``), so the plain name is not enough.
    """
    return "_".join(path.relative_to(class_dir).parts)


def write_stamps_folder(dest: Path, *, min_images: int = 15, per_class: int | None = None,
                        classes: Sequence[str] | None = None, root: Path = STAMPS_ROOT) -> dict[str, int]:
    """Copy the stamp PNGs, unchanged, into ``dest/<class>/``; returns how many files each class has there.

    ``per_class`` keeps the first that many of each class (in sorted order); ``classes`` keeps only the
    named classes (unknown names raise ``KeyError``). Files already there with the same size are skipped.
    """
    found = stamp_classes(root, min_images)
    folders = dict(_class_dirs(root))
    names = list(found) if classes is None else list(classes)
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"no stamp class {', '.join(missing)} (with >= {min_images} images); known: {', '.join(found)}")
    counts: dict[str, int] = {}
    for name in names:
        files = found[name] if per_class is None else found[name][:per_class]
        class_dir = folders[name]
        out_dir = dest / name
        out_dir.mkdir(parents=True, exist_ok=True)
        for src in files:
            target = out_dir / _stamp_copy_name(src, class_dir)
            if target.is_file() and target.stat().st_size == src.stat().st_size:
                continue
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(src, tmp)
            os.replace(tmp, target)
        counts[name] = len(files)
    return counts


# ----------------------------------------------------------------------------------------------------------
# Photo-shaped JPEGs


def _photo_path(dest: Path, class_names: Sequence[str], i: int) -> Path:
    """Where image ``i`` goes: classes are taken round-robin, so the path needs no random draw."""
    return dest / class_names[i % len(class_names)] / f"img_{i:06d}.jpg"


class _Generator:
    """Everything one process needs to draw images; loaded stamps and the noise texture are cached."""

    def __init__(self, classes: dict[str, list[Path]], dest: Path, seed: int, min_side: int, max_side: int) -> None:
        if not classes:
            raise ValueError("no stamp classes: is tuxpaint-stamps-default installed?")
        if not 16 <= min_side <= max_side <= _NOISE_SIDE:
            raise ValueError(f"need 16 <= min_side <= max_side <= {_NOISE_SIDE}, got {min_side}, {max_side}")
        self.classes = classes
        self.names = list(classes)
        self.dest = dest
        self.seed = seed
        self.min_side = min_side
        self.max_side = max_side
        self._stamps: dict[Path, Image.Image] = {}
        self._noise: Image.Image | None = None

    def stamp(self, path: Path) -> Image.Image:
        """The stamp at ``path`` as RGBA, cropped to its opaque part, loaded once per process."""
        image = self._stamps.get(path)
        if image is None:
            with Image.open(path) as opened:
                image = opened.convert("RGBA")
            box = image.getchannel("A").getbbox()  # drop transparent margins, so the scale means the object's
            if box:
                image = image.crop(box)
            self._stamps[path] = image
        return image

    def noise(self) -> Image.Image:
        """A fixed RGB texture of uniform noise (0..255), the same in every process."""
        if self._noise is None:
            rng = np.random.default_rng(_NOISE_SEED)
            data = rng.integers(0, 256, size=(_NOISE_SIDE, _NOISE_SIDE, 3), dtype=np.uint8)
            self._noise = Image.fromarray(data, "RGB")
        return self._noise

    # -- backgrounds: each layer is drawn small with numpy and scaled up by Pillow (C speed) --

    @staticmethod
    def _colour(rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, 256, size=3).astype(np.float32)

    def _gradient(self, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
        """A vertical or horizontal gradient through 2 or 3 colour stops (one line, stretched)."""
        stops = int(rng.integers(2, 4))
        colours = np.stack([self._colour(rng) for _ in range(stops)])
        vertical = bool(rng.integers(2))
        w, h = size
        t = np.linspace(0.0, 1.0, h if vertical else w)
        at = np.linspace(0.0, 1.0, stops)
        ramp = np.stack([np.interp(t, at, colours[:, c]) for c in range(3)], axis=-1).astype(np.uint8)
        line = ramp[:, None, :] if vertical else ramp[None, :, :]
        return Image.fromarray(np.ascontiguousarray(line), "RGB").resize(size, Image.NEAREST)

    def _smooth_noise(self, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
        """Blobs of colour: a small random array scaled up smoothly."""
        h, w = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        base = self._colour(rng)
        spread = float(rng.uniform(30, 130))
        small = np.clip(base + rng.normal(0.0, spread, size=(h, w, 3)), 0, 255).astype(np.uint8)
        return Image.fromarray(small, "RGB").resize(size, Image.BICUBIC)

    def _solid(self, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
        return Image.new("RGB", size, tuple(int(v) for v in self._colour(rng)))

    def _add_noise(self, rng: np.random.Generator, image: Image.Image, amplitude: int) -> Image.Image:
        """Add grain of +-``amplitude`` from a random crop of the noise texture."""
        w, h = image.size
        x = int(rng.integers(0, _NOISE_SIDE - w + 1))
        y = int(rng.integers(0, _NOISE_SIDE - h + 1))
        lut = [v * 2 * amplitude // 255 for v in range(256)] * 3
        grain = self.noise().crop((x, y, x + w, y + h)).point(lut)
        return ImageChops.add(image, grain, 1.0, -amplitude)

    def background(self, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
        """A random mix of gradients, smooth noise and solid colour, with some grain."""
        layers = (self._gradient, self._smooth_noise, self._solid)
        kind = int(rng.choice(3, p=[0.4, 0.4, 0.2]))
        image = layers[kind](rng, size)
        if rng.random() < 0.5:  # blend in a second layer
            other = layers[int(rng.integers(0, 3))](rng, size)
            image = Image.blend(image, other, float(rng.uniform(0.2, 0.6)))
        amplitude = int(rng.integers(12, 40)) if kind == 2 else int(rng.integers(0, 16))
        if amplitude > 1:
            image = self._add_noise(rng, image, amplitude)
        return image

    def draw(self, i: int) -> tuple[Path, bytes]:
        """Image ``i``: its path and its JPEG bytes; depends only on the seed and ``i``."""
        rng = np.random.default_rng([self.seed, i])
        path = _photo_path(self.dest, self.names, i)
        files = self.classes[self.names[i % len(self.names)]]
        stamp = self.stamp(files[int(rng.integers(0, len(files)))])

        # Canvas: log-uniform aspect ratio in [1:2, 2:1], both sides within [min_side, max_side].
        aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        long_side = int(rng.integers(self.min_side, self.max_side + 1))
        w, h = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
        w, h = (int(min(max(round(v), self.min_side), self.max_side)) for v in (w, h))
        canvas = self.background(rng, (w, h))

        # Stamp: longer side 40-90 % of the canvas's shorter side, a small rotation, a random position.
        target = float(rng.uniform(0.4, 0.9)) * min(w, h)
        scale = target / max(stamp.size)
        angle = float(rng.uniform(-15, 15))
        if abs(angle) <= 1:
            angle = 0.0
        # Bilinear rotation is the slowest step: rotate at whichever size is smaller, the stamp's or the target's.
        piece = stamp
        if angle and scale > 1:
            piece = piece.rotate(angle, resample=Image.BILINEAR, expand=True)
        piece = piece.resize(tuple(max(1, round(v * scale)) for v in piece.size), Image.BILINEAR)
        if angle and scale <= 1:
            piece = piece.rotate(angle, resample=Image.BILINEAR, expand=True)
        x = int(rng.integers(0, max(0, w - piece.width) + 1))
        y = int(rng.integers(0, max(0, h - piece.height) + 1))
        canvas.paste(piece, (x, y), piece)

        # Camera-ish jitter: slight blur, brightness.
        if rng.random() < 0.2:  # half size and back: a slight blur at a fraction of GaussianBlur's cost
            canvas = canvas.reduce(2).resize((w, h), Image.BILINEAR)
        if rng.random() < 0.5:
            factor = float(rng.uniform(0.85, 1.15))
            canvas = canvas.point([min(255, int(v * factor + 0.5)) for v in range(256)] * 3)

        buffer = io.BytesIO()
        canvas.save(buffer, "JPEG", quality=int(rng.integers(85, 93)))
        return path, buffer.getvalue()

    def write(self, i: int) -> int:
        """Draw image ``i`` and write it atomically (a partial file never looks finished); returns ``i``."""
        path, data = self.draw(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return i


_WORKER: _Generator | None = None


def _init_worker(classes: dict[str, list[Path]], dest: Path, seed: int, min_side: int, max_side: int) -> None:
    global _WORKER
    _WORKER = _Generator(classes, dest, seed, min_side, max_side)


def _work(i: int) -> int:
    assert _WORKER is not None
    return _WORKER.write(i)


def _progress(done: Iterator[int], total: int, show: bool, description: str) -> None:
    """Drain ``done``, with a rich progress bar when ``show``."""
    if not show:
        for _ in done:
            pass
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=total)
        for _ in done:
            bar.advance(task)


def write_photo_set(dest: Path, count: int, *, seed: int = 0, workers: int | None = None, min_side: int = 300,
                    max_side: int = 800, show_progress: bool = True, min_images: int = 15,
                    root: Path = STAMPS_ROOT) -> int:
    """Write ``count`` photo-shaped JPEGs as ``dest/<class>/img_<i:06d>.jpg``; returns how many of them exist.

    Image ``i`` uses class ``i mod (number of classes)`` of :func:`stamp_classes` and depends only on
    ``seed`` and ``i``; images already there are skipped, so an interrupted run resumes. ``workers``
    processes (default ``os.cpu_count()``) share the work in chunks.
    """
    dest = Path(dest)
    classes = stamp_classes(root, min_images)
    if not classes:
        raise ValueError(f"no stamp classes with >= {min_images} images under {root}: "
                         "is tuxpaint-stamps-default installed?")
    names = list(classes)
    todo = [i for i in range(count) if not _photo_path(dest, names, i).exists()]
    for name in names[:count]:
        (dest / name).mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    if todo:
        args = (classes, dest, seed, min_side, max_side)
        if workers == 1:
            generator = _Generator(*args)
            _progress((generator.write(i) for i in todo), len(todo), show_progress, "photos")
        else:
            chunk = max(1, min(32, len(todo) // (workers * 8)))
            with Pool(workers, initializer=_init_worker, initargs=args) as pool:
                _progress(pool.imap_unordered(_work, todo, chunksize=chunk), len(todo), show_progress, "photos")
    return sum(_photo_path(dest, names, i).exists() for i in range(count))


# ----------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``photos DEST --count N [--seed S] [--workers W]`` or ``stamps DEST [--per-class K]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    photos = commands.add_parser("photos", help="write N photo-shaped JPEGs, one folder per class")
    photos.add_argument("dest", type=Path)
    photos.add_argument("--count", type=int, required=True)
    photos.add_argument("--seed", type=int, default=0)
    photos.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    photos.add_argument("--min-side", type=int, default=300)
    photos.add_argument("--max-side", type=int, default=800)
    photos.add_argument("--no-progress", action="store_true")
    stamps = commands.add_parser("stamps", help="copy the original stamp PNGs, one folder per class")
    stamps.add_argument("dest", type=Path)
    stamps.add_argument("--per-class", type=int, default=None)
    stamps.add_argument("--min-images", type=int, default=15)
    args = parser.parse_args(argv)

    if not stamps_available():
        print(f"no stamps under {STAMPS_ROOT}: install Debian's tuxpaint-stamps-default", file=sys.stderr)
        return 1
    if args.command == "photos":
        start = time.perf_counter()
        n = write_photo_set(args.dest, args.count, seed=args.seed, workers=args.workers, min_side=args.min_side,
                            max_side=args.max_side, show_progress=not args.no_progress)
        seconds = time.perf_counter() - start
        folders = sorted(p.name for p in args.dest.iterdir() if p.is_dir())
        print(f"{n} JPEGs in {len(folders)} class folders under {args.dest} ({seconds:.1f} s)")
    else:
        counts = write_stamps_folder(args.dest, min_images=args.min_images, per_class=args.per_class)
        for name, k in counts.items():
            print(f"{k:5d}  {name}")
        print(f"{sum(counts.values())} PNGs in {len(counts)} class folders under {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
