"""The bundled sample data set (Animal MNIST), written out as folder-per-class PNGs."""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from automl_tl.errors import UserError
from automl_tl.runtime.cache_paths import data_home
from automl_tl.runtime.env_vars import DATA_HOME

SAMPLE_NAME = "animal_mnist"
SAMPLE_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
DATA_HOME_ENV = DATA_HOME.name
MARKER = ".automl-tl-sample"

_DATA_FILE = "animal_data_version_3.gz"
_LABEL_FILE = "animal_label_version_3.gz"
_INSTALL_HINT = "Install it with `pip install --no-deps animal-mnist` (or `make setup`)."


def _numpy_helper(module: str, old_module: str, name: str) -> Any:
    """A numpy unpickling helper from wherever this numpy version keeps it (numpy 2's ``_core`` or 1.x's ``core``)."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # pragma: no cover - numpy 1.x
        return getattr(importlib.import_module(old_module), name)


def _reconstruct() -> Any:
    """numpy's array-unpickling helper, from wherever this numpy version keeps it."""
    return _numpy_helper("numpy._core.multiarray", "numpy.core.multiarray", "_reconstruct")


def _scalar() -> Any:
    """numpy's scalar-unpickling helper (used by 0-d values such as a dtype's fill)."""
    return _numpy_helper("numpy._core.multiarray", "numpy.core.multiarray", "scalar")


def _frombuffer() -> Any:
    """numpy's helper for arrays pickled with protocol 5."""
    return _numpy_helper("numpy._core.numeric", "numpy.core.numeric", "_frombuffer")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else.

    Any other global a pickle names (``os.system``, ``builtins.eval``, ...) is refused
    with ``pickle.UnpicklingError`` before it is looked up.
    """

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return factory()


def load_numpy_pickle(stream: io.BufferedIOBase | IO[bytes]) -> Any:
    """Unpickle ``stream`` with ``NumpyOnlyUnpickler``."""
    return NumpyOnlyUnpickler(stream).load()


def sample_data_files() -> tuple[Path, Path]:
    """The images and labels files shipped by the installed ``animal_mnist`` package."""
    spec = importlib.util.find_spec(SAMPLE_NAME)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"The sample data set needs the Python package animal-mnist, which is not installed. {_INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"
    files = (folder / _DATA_FILE, folder / _LABEL_FILE)
    for file in files:
        if not file.is_file():
            raise UserError(f"The animal-mnist package is installed but {file} is missing. Reinstall it: {_INSTALL_HINT}")
    return files


def load_sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels int64 (N,) in 0..9, read without running any pickled code."""
    data_file, label_file = sample_data_files()
    try:
        with gzip.open(data_file, "rb") as handle:
            images = load_numpy_pickle(handle)
        with gzip.open(label_file, "rb") as handle:
            labels = load_numpy_pickle(handle)
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise UserError(f"Cannot read the sample data in {data_file.parent} ({exc}). Reinstall it: {_INSTALL_HINT}") from None
    ok = (
        isinstance(images, np.ndarray)
        and isinstance(labels, np.ndarray)
        and images.ndim == 3
        and labels.shape == (images.shape[0],)
        and images.shape[0] > 0
        and int(labels.min()) >= 0
        and int(labels.max()) < len(SAMPLE_CLASSES)
    )
    if not ok:
        raise UserError(f"The sample data in {data_file.parent} is not what automl-tl expects. Reinstall it: {_INSTALL_HINT}")
    return np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64)


def default_sample_dir() -> Path:
    """``$AUTOML_TL_DATA_HOME/animal_mnist`` when that is set, else ``~/.cache/automl-tl/animal_mnist``."""
    return data_home() / SAMPLE_NAME


def write_sample(directory: Path, limit_per_class: int | None = None, progress: bool = True) -> Path:
    """Write the sample as ``directory/<class>/<index>.png`` (grayscale PNGs) and return ``directory``.

    ``<index>`` is the image's position in the original array, zero-padded to 5 digits;
    ``limit_per_class`` keeps the first N images of each class. The files are written
    into a temporary sibling folder that is renamed into place at the end, so the
    target is either absent or complete. A complete sample already there (its
    ``.automl-tl-sample`` marker holds the file count, which matches) is left alone; a
    sample of ours with another count is replaced; anything else is never touched.
    """
    if limit_per_class is not None and limit_per_class < 1:
        raise UserError(f"The sample's images per class must be at least 1, got {limit_per_class}.")
    target = Path(directory).expanduser()
    images, labels = load_sample_arrays()
    chosen = _choose(labels, limit_per_class)
    state = _state(target, len(chosen))
    if state == "complete":
        return target
    if state == "foreign":
        raise UserError(
            f"{target} already exists and is not a sample folder written by automl-tl (no {MARKER} file). "
            f"Choose another folder (automl-tl sample-data DIR) or remove this one."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        _write_pngs(staging, images, labels, chosen, progress)
        (staging / MARKER).write_text(f"{len(chosen)}\n", encoding="utf-8")
        _move_into_place(staging, target, state)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if _state(target, len(chosen)) == "complete":  # another process wrote the same sample first
            return target
        raise UserError(f"Cannot write the sample data set to {target}: {exc}. Pass another folder.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def ensure_sample(directory: Path | None = None) -> Path:
    """The sample folder (``default_sample_dir()`` unless given), written first if needed."""
    return write_sample(directory if directory is not None else default_sample_dir())


def _choose(labels: np.ndarray, limit_per_class: int | None) -> list[int]:
    """Indices into the arrays to write, in order: the first ``limit_per_class`` of each class."""
    chosen: list[int] = []
    for label in range(len(SAMPLE_CLASSES)):
        indices = np.flatnonzero(labels == label)
        chosen.extend(int(i) for i in indices[:limit_per_class])
    return sorted(chosen)


def _state(target: Path, expected: int) -> str:
    """Classify the target: missing, empty, complete, stale (ours, another count) or foreign."""
    if not target.exists() and not target.is_symlink():
        return "missing"
    if not target.is_dir() or target.is_symlink():
        return "foreign"
    marker = target / MARKER
    if not marker.is_file():
        return "empty" if not any(target.iterdir()) else "foreign"
    try:
        recorded = int(marker.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return "stale"
    return "complete" if recorded == expected and _count_pngs(target) == expected else "stale"


def _count_pngs(target: Path) -> int:
    """PNG files one level down, in the class folders."""
    total = 0
    for name in SAMPLE_CLASSES:
        folder = target / name
        if folder.is_dir():
            with os.scandir(folder) as entries:
                total += sum(1 for entry in entries if entry.name.endswith(".png"))
    return total


def _write_pngs(folder: Path, images: np.ndarray, labels: np.ndarray, chosen: list[int], progress: bool) -> None:
    """Write the chosen images as ``folder/<class>/<index:05d>.png``."""
    from rich.progress import Progress

    for name in SAMPLE_CLASSES:
        (folder / name).mkdir()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("Writing sample images", total=len(chosen))
        for index in chosen:
            path = folder / SAMPLE_CLASSES[int(labels[index])] / f"{index:05d}.png"
            Image.fromarray(images[index]).save(path, format="PNG", compress_level=1)
            bar.advance(task)


def _move_into_place(staging: Path, target: Path, state: str) -> None:
    """Rename ``staging`` to ``target``; an old sample of ours is moved aside first, then deleted."""
    old: Path | None = None
    if state == "stale":
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "sample")
    try:
        os.replace(staging, target)  # atomic; also replaces an empty folder
    except OSError:
        if old is not None and not target.exists():
            os.replace(old / "sample", target)  # put the old one back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
