"""The whole extension contract of automl-tl.

A plugin is a module with functions decorated by ``automl_tl.hookimpl`` whose
names match the specs below. Installed packages announce such a module through
the ``automl_tl`` entry-point group; the built-in PyTorch adapter and dataset
adapters are loaded exactly that way.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from automl_tl.types import BackboneSpec, DatasetAdapter, FrameworkAdapter

PROJECT = "automl_tl"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


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
    """


@hookspec
def register_datasets(register: Callable[[DatasetAdapter], None]) -> None:
    """Register dataset adapters.

    Call ``register(adapter)`` with an ``automl_tl.types.DatasetAdapter``. For a DATA
    argument, the first adapter whose ``claims(location)`` is true reads it with
    ``discover(location)``, which returns ``DataSplits`` or raises ``UserError``.
    """
