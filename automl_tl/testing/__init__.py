"""Adapter conformance suite: the contract every backbone and every framework plugin must keep.

A backbone plugin tests its backbone with its framework's ready-made class, naming only the spec:

    from automl_tl.plugin import load_plugins
    from automl_tl_torch.testing import TorchBackboneConformance   # automl_tl_keras.testing: KerasBackboneConformance

    class TestMyBackbone(TorchBackboneConformance):
        def make_spec(self):
            return load_plugins().backbone("my_backbone")

A framework plugin subclasses ``AdapterConformance`` and implements ``make_adapter``, ``make_spec``,
``reference_features`` and ``seed_framework`` (see ``automl_tl_torch.testing`` for a complete example).
The suite reads a trial's weights through the session contract only: its sessions implement
``automl_tl.capabilities.InspectableSession`` (``block_weights(index)``, ``head_weights()``). Name the
subclass ``Test...`` so pytest collects it.

The suite checks, for pretrained and from-scratch backbones alike (a from-scratch one has no head-only
phase and freezes nothing, as ``automl_tl.training.engine.effective_config`` runs it): the spec and the
adapter's declarations; the head-only phase changes the head and nothing else; the head learns; fine-tuning
changes every block above the freeze point and none below; the engine's phase schedule and per-epoch
reports; probabilities for every split; snapshot and restore; save/load round trips, truncated and
augmented too; an epoch stopped by ``should_stop`` after every step and continued, against an uninterrupted
one; a damaged weights file reported as ``UserError`` naming it; export parity for every
declared format (a format outside ``safe_formats`` refused unless trusted), against both the reloaded
model and the trial's own predictions; ``block_features(k)`` against the framework's own model run block
by block; pretrained builds that give the same weights every time; determinism under a fixed seed.

Every failure is a ``ConformanceFailure`` (an ``AssertionError``) whose message starts with the
backbone's name and says what is wrong, e.g. ``mobilenet_v2: block_features(k=3) differs from the
model's own block-3 output (pooled) by 0.41 (tolerance 1e-4)``.

The suite keeps activations in a cache folder of its own (one per test class), never the caller's, in
``cache_dtype`` (float32 by default, so a trial's predictions and a reloaded model's agree to 1e-5;
set ``cache_dtype = "float16"`` to check the search's default storage, at float16's tolerance), and runs
on one compute thread (``suite_environment``); the caller's settings are restored after each check.
"""

from __future__ import annotations

from .artifact_checks import ArtifactChecks
from .environment import suite_environment
from .epoch_checks import EpochChecks
from .tables import reference_inputs, synthetic_table
from .training_checks import TrainingChecks
from .verdicts import ConformanceFailure

__all__ = ["AdapterConformance", "ConformanceFailure", "reference_inputs", "suite_environment", "synthetic_table"]


class AdapterConformance(TrainingChecks, EpochChecks, ArtifactChecks):
    """Framework-neutral tests of a FrameworkAdapter and one backbone; see the module docstring."""
