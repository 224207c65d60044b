"""A trial architecture's inference latency as its export serves it: one TensorFlow graph on this machine's CPU.

The model is the one ``export`` writes (``with_normalisation`` around the backbone cut at the trial's
depth, pooling and a head of its width). It is timed as one concrete ``tf.function`` with a dynamic batch
axis, in inference mode: the graph the SavedModel export's ``serve`` endpoint runs, and what a `.keras`
file runs when called as ``model(images)``. ``model.predict`` is not timed: it adds Keras' per-call set-up
(a data pipeline for every call, milliseconds at batch 1) that depends on how the caller batches, not on
the architecture. Weights do not change the time: the backbone has the pretrained weights (random for a
from-scratch one) and the head is untrained.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from automl_tl.runtime.timing import median_ms
from automl_tl.types import BackboneSpec, TrialConfig

# (batch size, warm-up calls, timed calls at most, seconds of timed calls at most): batch 32 is the costly one.
RUNS = ((1, 3, 20, 1.5), (32, 1, 5, 2.5))


def keras_latency(spec: BackboneSpec, config: TrialConfig, num_classes: int,
                  check_base: Callable[[Any], None] | None = None) -> dict[str, float]:
    """Median milliseconds per call at batch 1 and batch 32 (``batch_1_ms``, ``batch_32_ms``) of the exported
    form of ``config``'s architecture at ``config.image_size``. ``check_base``: the adapter's check that a
    pretrained build has the weights every other build of ``spec`` has."""
    from .exporting import with_normalisation
    from .model import build_head, cut_tensors, full_classifier, tf
    from .session import build_base

    base = build_base(spec, check_base)
    top = cut_tensors(base, spec.blocks)[config.depth(len(spec.blocks)) - 1]
    head = build_head(int(top.shape[-1]), config.head_units, config.head_dropout, num_classes)
    model = with_normalisation(full_classifier(base, head, top), spec.preprocessing(config.image_size))
    size = config.image_size
    serve = tf.function(lambda images: model(images, training=False)).get_concrete_function(
        tf.TensorSpec((None, size, size, 3), tf.float32))
    rng = np.random.default_rng(0)
    result = {}
    for batch_size, warmup, repeats, budget_s in RUNS:
        images = tf.constant(rng.random((batch_size, size, size, 3), dtype=np.float32))
        result[f"batch_{batch_size}_ms"] = median_ms(partial(_run, serve, images), warmup, repeats, budget_s)
    return result


def _run(serve: Any, images: Any) -> Any:
    """One call of the graph, its result brought back to the host (so the time includes all of its work)."""
    return serve(images).numpy()
