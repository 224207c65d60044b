"""Where automl-tl keeps files on this machine: the cache folder and its sub-folders, and the sample data.

The layout, unchanged since the first release (users have caches in it)::

    $AUTOML_TL_CACHE_DIR                 (else $XDG_CACHE_HOME/automl-tl/activations, ~/.cache by default)
    ├── <digest>.npy, <digest>.json      the activation cache's entries (the folder itself)
    ├── decoded/                         the decoded-image store
    └── latency/                         measurements of this machine: latency.json, block_seconds.json

The activations sit in the root itself, so the root and the activations folder are one path; callers ask
for the folder they mean (``activations_dir``, ``decoded_dir``, ``latency_dir``), never build it.
"""

from __future__ import annotations

import os
from pathlib import Path

from automl_tl.runtime.env_vars import CACHE_DIR, DATA_HOME, XDG_CACHE_HOME

__all__ = ["activations_dir", "cache_root", "data_home", "decoded_dir", "latency_dir"]

APP_FOLDER = "automl-tl"


def _user_cache() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache``."""
    return Path(XDG_CACHE_HOME.given() or os.path.join(os.path.expanduser("~"), ".cache"))


def cache_root() -> Path:
    """``$AUTOML_TL_CACHE_DIR``, else ``$XDG_CACHE_HOME/automl-tl/activations`` (``~/.cache`` by default)."""
    explicit = CACHE_DIR.given()
    if explicit:
        return Path(explicit).expanduser()
    return _user_cache() / APP_FOLDER / "activations"


def activations_dir() -> Path:
    """The activation cache's entries: the cache root itself."""
    return cache_root()


def decoded_dir() -> Path:
    """The decoded-image store: ``decoded/`` in the cache root."""
    return cache_root() / "decoded"


def latency_dir() -> Path:
    """This machine's measurements (latencies, block timings): ``latency/`` in the cache root."""
    return cache_root() / "latency"


def data_home() -> Path:
    """Where downloaded sample data goes: ``$AUTOML_TL_DATA_HOME``, else ``~/.cache/automl-tl``."""
    home = DATA_HOME.given()
    return Path(home).expanduser() if home else Path.home() / ".cache" / APP_FOLDER
