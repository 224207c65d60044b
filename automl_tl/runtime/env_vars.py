"""Every environment variable automl-tl and its bundled plugins read: one table, its name, default and meaning.

Code reads a variable through its row (``CACHE_DIR.given()``), never with ``os.environ`` of its own, so this
table is the whole list. The docs' "Environment variables" table (docs/user-guide/environment.md) lists the
same names; a test (``tests/runtime/test_env_vars.py``) holds the two together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["CACHE_DIR", "CACHE_DTYPE", "CACHE_GB", "CV", "DATA_HOME", "ENVIRONMENT", "EnvVar", "KERAS_HOME",
           "LOAD_PLUGINS", "MALLOC_TUNING", "STORAGE", "STUDIES", "TF_LOG_LEVEL", "THREADS", "TORCH_HOME",
           "TRACE_HOOKS", "XDG_CACHE_HOME"]


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its ``name``, its ``default`` (as the docs say it) and its ``meaning``."""

    name: str
    default: str
    meaning: str

    def raw(self) -> str | None:
        """The value as set, "" included; None when the variable is not set."""
        return os.environ.get(self.name)

    def given(self) -> str | None:
        """The value when it is set and not empty; None otherwise (then the default applies)."""
        return self.raw() or None

    def value(self, default: str) -> str:
        """The value as set ("" included); ``default`` when the variable is not set."""
        raw = self.raw()
        return default if raw is None else raw

    def put_default(self, value: str) -> None:
        """Set the variable to ``value`` unless it is set already ("" included): the user's value wins."""
        if self.raw() is None:
            self.put(value)

    def put(self, value: str | None) -> None:
        """Set the variable for this process and its children (None: remove it)."""
        if value is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = value


CACHE_DIR = EnvVar("AUTOML_TL_CACHE_DIR", "`$XDG_CACHE_HOME/automl-tl/activations`",
                   "the cache folder: activations, decoded images (`decoded/`) and measurements (`latency/`)")
CACHE_GB = EnvVar("AUTOML_TL_CACHE_GB", "half the disk the cache may use, between 1 and 64 GB",
                  "the activation cache's size limit, in GB")
CACHE_DTYPE = EnvVar("AUTOML_TL_CACHE_DTYPE", "`float16`", "how activations are stored: `float16` or `float32`")
CV = EnvVar("AUTOML_TL_CV", "`auto`", "the default of `search --cv`: `auto`, `off` or a number of folds")
DATA_HOME = EnvVar("AUTOML_TL_DATA_HOME", "`~/.cache/automl-tl`",
                   "where `automl-tl sample-data` and a search without DATA put the sample data set (in "
                   "`animal_mnist/`)")
LOAD_PLUGINS = EnvVar("AUTOML_TL_LOAD_PLUGINS", "every installed plugin",
                      "the entry-point plugins to load, comma-separated (empty: none)")
MALLOC_TUNING = EnvVar("AUTOML_TL_MALLOC_TUNING", "`1`",
                       "`0` keeps glibc's default allocator settings in the CLI's processes")
STORAGE = EnvVar("AUTOML_TL_STORAGE", "`sqlite:///studies/<name>.db`",
                 "the study's storage URL, as `--storage` (which it keeps out of the process list)")
STUDIES = EnvVar("AUTOML_TL_STUDIES", "`./studies`", "the folder of the SQLite studies and their artifacts")
THREADS = EnvVar("AUTOML_TL_THREADS", "the CPUs this process may use", "the compute threads of an adapter")
TRACE_HOOKS = EnvVar("AUTOML_TL_TRACE_HOOKS", "off", "`1` prints each hook call and the plugins it calls")
XDG_CACHE_HOME = EnvVar("XDG_CACHE_HOME", "`~/.cache`", "the base of the default cache folder and of torch's")
TORCH_HOME = EnvVar("TORCH_HOME", "`$XDG_CACHE_HOME/torch`",
                    "where the torch plugin finds torch hub's checkpoints (`hub/checkpoints/`)")
KERAS_HOME = EnvVar("KERAS_HOME", "`~/.keras`", "where the Keras plugin finds and ports Keras weights (`models/`)")
TF_LOG_LEVEL = EnvVar("TF_CPP_MIN_LOG_LEVEL", "`2` (errors only) in automl-tl's processes",
                      "TensorFlow's C++ log level; the lines it lets through go to Python's `tensorflow.native` "
                      "logger, never to the terminal")

ENVIRONMENT: tuple[EnvVar, ...] = (CACHE_DIR, CACHE_GB, CACHE_DTYPE, CV, DATA_HOME, LOAD_PLUGINS, MALLOC_TUNING,
                                   STORAGE, STUDIES, THREADS, TRACE_HOOKS, XDG_CACHE_HOME, TORCH_HOME, KERAS_HOME,
                                   TF_LOG_LEVEL)
"""The table: every variable read, in the order the docs list them."""
