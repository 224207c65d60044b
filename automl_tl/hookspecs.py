"""The whole extension contract of automl-tl.

A plugin is a module with functions decorated by ``@hookimpl`` (``from automl_tl.hookspecs import
hookimpl``) whose names match the specs below; a function named like a hook but not decorated is
never called, and loading warns about it. Installed packages announce such a module through the
``automl_tl`` entry-point group; the built-in PyTorch adapter and dataset adapters are loaded exactly
that way. ``--plugin FILE.py`` loads a single file.

automl-tl calls each hook through pluggy once per plugin that implements it, so that it knows which
plugin registered what and can skip a plugin whose hook raises without losing the others. Plugins are
asked in pluggy's own call order, and automl-tl registers them with pluggy last to first, so that is
the order they were loaded in (installed ones, then ``--plugin`` files, then plugins passed in code);
``@hookimpl(tryfirst=True)`` / ``(trylast=True)`` move one to the front or the back. A hook wrapper
(``@hookimpl(wrapper=True)``) in a plugin that does not implement the hook itself runs around every
plugin's call; in one that does, around that plugin's own call.
Everything registered is checked as it arrives (``automl_tl.plugin.spec_checks``): a spec that cannot
work is a ``PluginContractError`` (a ``UserError``) naming the plugin, the item and the field to fix.
``AUTOML_TL_TRACE_HOOKS=1`` turns on pluggy's own tracing (``PluginManager.enable_tracing``) on stderr.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from automl_tl.types import BackboneSpec, DatasetAdapter, FrameworkAdapter

__all__ = ["PROJECT", "hookimpl", "hookspec", "register_backbones", "register_datasets", "register_frameworks"]

PROJECT = "automl_tl"

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks the hook specifications below (automl-tl's own; plugins do not need it)."""
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's hook implementation: ``@hookimpl`` above ``def register_backbones(register): ...``."""


@hookspec
def register_frameworks(register: Callable[[FrameworkAdapter], None]) -> None:
    """Register framework adapters (torch, keras, ...).

    Call ``register(adapter)`` once per adapter. ``adapter.name`` becomes the value of
    ``--framework`` and of ``BackboneSpec.framework``. The adapter must implement
    ``automl_tl.types.FrameworkAdapter``; ``automl_tl.testing`` has a conformance suite.
    Import the framework lazily, inside the adapter's methods, so that ``automl-tl --help``
    stays fast and the core works where the framework is missing.
    """


@hookspec
def register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """Register pretrained backbones.

    Call ``register(spec)`` once per backbone with an ``automl_tl.types.BackboneSpec``:
    its name (unique across plugins), framework, a ``factory(pretrained)`` that returns the
    framework's model, its ordered block names, feature dimension, input size and
    normalisation, and a ``WeightsInfo`` saying where the weights come from and whether
    they are available offline. A name registered twice is an error naming both plugins.

    ``register`` checks the spec at once: distinct non-empty block names, a positive
    ``feature_dim``, ``mean`` and ``std`` of three numbers each on 0..1 pixels, a callable
    factory. Where the adapter builds the model it checks that every block names a part of it
    and that ``feature_dim`` is the real width of its pooled features. Each failure is a
    ``UserError`` saying what to write instead.
    """


@hookspec
def register_datasets(register: Callable[[DatasetAdapter], None]) -> None:
    """Register dataset adapters.

    Call ``register(adapter)`` with an ``automl_tl.types.DatasetAdapter``. For a DATA
    argument, the first adapter whose ``claims(location)`` is true reads it with
    ``discover(location)``, which returns ``DataSplits`` or raises ``UserError``
    (``automl_tl.data.split.make_splits`` builds the ``DataSplits`` from the items found).
    The core checks what ``discover`` returns: at least two classes, a non-empty training
    and validation split, one split entry per item, labels in range and a training image
    for every class; anything else is a ``UserError`` naming the adapter.
    """
