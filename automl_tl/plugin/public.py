"""What a plugin may import from automl-tl: the public surface, one explicit list.

``PUBLIC_API`` maps each module a plugin may import from to the names it may import there; ``None``
means every name in that module's ``__all__``. Anything else in ``automl_tl`` is internal and may change
without notice. ``tests/test_architecture.py`` checks every ``.py`` file under ``plugins/`` against this
list, and ``tests/plugin/test_public_modules.py`` checks that each listed name exists and is documented.
The docs' plugin author's guide (docs/plugins/public-api.md) describes the list, and its API reference
shows each module's docstrings.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PUBLIC_API", "is_public"]

PUBLIC_API: Mapping[str, tuple[str, ...] | None] = {
    # The contract: hooks, types, optional capabilities, errors.
    "automl_tl.hookspecs": None,
    "automl_tl.types": None,
    "automl_tl.session_types": None,
    "automl_tl.ensemble_types": None,
    "automl_tl.capabilities": None,
    "automl_tl.errors": None,
    "automl_tl.import_order": ("installed", "torchvision_before_tensorflow"),
    # Loading plugins and checking what they register.
    "automl_tl.plugin": None,
    "automl_tl.plugin.manager": None,
    "automl_tl.plugin.registry": None,
    "automl_tl.plugin.spec_checks": None,
    "automl_tl.plugin.data_checks": None,
    # Dataset adapters: the stable split.
    "automl_tl.data": None,
    "automl_tl.data.split": None,
    # Framework adapters: the shared activation cache and what a trial's training shares with the core.
    "automl_tl.cache.activations": ("PrefixActivations", "PrefixIdentity", "normalise_images", "rows_as_float32"),
    "automl_tl.cache.store": ("ActivationStore", "MemoryStore", "arrays_digest", "store_from_env"),
    "automl_tl.cache.block_timing": ("probe_table", "time_blocks"),
    "automl_tl.training.augment": ("mixed_rows", "view_choice", "view_ids", "views"),
    "automl_tl.training.block_rates": ("block_rate_multipliers", "block_rates"),
    "automl_tl.training.schedule": ("finetune_steps",),
    "automl_tl.runtime.threads": ("usable_cpus",),
    "automl_tl.runtime.timing": ("median_ms",),
    "automl_tl.runtime.native_logs": ("native_stderr_to_log", "python_logs_to_log"),
    # Files on disk: the one write-then-rename helper and the table of environment variables.
    "automl_tl.runtime.atomic_files": None,
    "automl_tl.runtime.env_vars": None,
    # The conformance suite.
    "automl_tl.testing": None,
}
"""Module -> the names a plugin may import from it (``None``: the module's whole ``__all__``)."""


def is_public(module: str, name: str, exported: tuple[str, ...] = ()) -> bool:
    """Whether a plugin may write ``from module import name``; ``exported`` is the module's ``__all__``,
    which decides for a module listed with ``None``."""
    if module not in PUBLIC_API:
        return False
    names = PUBLIC_API[module]
    return name in (exported if names is None else names)
