"""The pruners' names and the default, apart from their code: the command-line parser reads them without
importing Optuna (``predict`` and ``evaluate`` never prune, and skip its import)."""

from __future__ import annotations

PRUNERS = ("halving", "median", "hyperband", "none")
DEFAULT_PRUNER = "halving"
