"""The commands, and the typed Python API over them.

The CLI (``automl_tl.cli``) parses a command line onto the options of ``api/parser.py`` and calls the command;
the Python API (``automl_tl.search``, ``Study``, ``load_model``) takes the same options as keywords
(``api/options.py``) and calls the same commands. Names here are imported on first use, so that
``automl-tl predict`` does not pay for the search's imports."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["ExportedModel", "Picture", "Study", "load_model", "open_study", "search"]

_HOMES = {"search": "searching", "Study": "study", "open_study": "study", "ExportedModel": "model",
          "load_model": "model", "Picture": "pictures"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"automl_tl.api.{_HOMES[name]}"), name)
