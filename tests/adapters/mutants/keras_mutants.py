"""Broken Keras adapters: the real ``KerasAdapter`` with one behaviour broken."""

from __future__ import annotations

from typing import Any

import numpy as np

from automl_tl.types import BackboneSpec, ImageTable, TrialConfig
from automl_tl_keras.adapter import KerasAdapter


class KerasBlockFeaturesOneTooShallow(KerasAdapter):
    """``block_features(k)`` pools after block k - 1 (for k > 1)."""

    def block_features(self, spec: BackboneSpec, data: ImageTable, block: int) -> np.ndarray:
        return super().block_features(spec, data, max(1, block - 1))


class KerasFreezesNothing(KerasAdapter):
    """Fine-tuning trains the whole backbone, whatever the trial freezes."""

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        session = super().start_trial(spec, config, data)
        for layer in session.base.layers:
            layer.trainable = True
        from automl_tl_keras.model import keras

        session.suffix = keras.Model(session.base.input, session.cuts[-1])
        session.frozen = 0
        return session
