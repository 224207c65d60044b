"""A trial architecture's inference latency as its ONNX export runs: onnxruntime on this machine's CPU.

The model is the one ``export --format onnx`` writes (``NormalisedClassifier`` around the backbone cut at
the trial's depth and a head of its width, exported by ``exporting.export_model``), and its graph runs in
the session ``OnnxModel`` opens, the one ``predict`` uses (the NHWC-to-NCHW copy before it is not timed).
Weights do not change the time, so the backbone is a copy of the pretrained prototype (random weights for
a from-scratch one) and the head is untrained.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.runtime.timing import median_ms
from automl_tl.types import BackboneSpec, TrialConfig

# (batch size, warm-up calls, timed calls at most, seconds of timed calls at most): batch 32 is the costly one.
RUNS = ((1, 3, 20, 1.5), (32, 1, 5, 2.5))


def onnx_latency(spec: BackboneSpec, config: TrialConfig, num_classes: int, prototype: Any = None) -> dict[str, float]:
    """Median milliseconds per call at batch 1 and batch 32 (``batch_1_ms``, ``batch_32_ms``) of the ONNX
    export of ``config``'s architecture, at ``config.image_size``. ``prototype``: the adapter's pretrained
    backbone, copied instead of built again."""
    import torch

    from .exporting import OnnxModel, export_model
    from .model import build_classifier

    with torch.no_grad():
        classifier = build_classifier(spec, num_classes, config, pretrained=spec.pretrained, prototype=prototype)
    classifier = classifier.cpu().to(memory_format=torch.contiguous_format).eval()  # the prototype may be on a GPU
    preprocessing = spec.preprocessing(config.image_size)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="automl-tl-latency-") as folder:
        model_file = export_model(classifier, preprocessing, "onnx", Path(folder))
        del classifier
        model = OnnxModel(Path(folder) / model_file)
        result = {}
        for batch_size, warmup, repeats, budget_s in RUNS:
            feed = {model.input_name: rng.random((batch_size, 3, config.image_size, config.image_size), dtype=np.float32)}
            result[f"batch_{batch_size}_ms"] = median_ms(partial(model.session.run, None, feed), warmup, repeats, budget_s)
    return result
