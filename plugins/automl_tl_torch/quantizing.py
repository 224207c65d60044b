"""int8 static quantization of an ONNX export with ONNX Runtime's own tools.

``quant_pre_process`` first (shape inference and graph optimisation, which folds batch norms and fuses
activations so that fewer tensors need a quantization range), then ``quantize_static``: weights int8
per output channel, activations uint8 with ranges calibrated (min-max) on the training images the core
passes. The graph is written in QDQ form (QuantizeLinear/DequantizeLinear pairs), which onnxruntime fuses
into integer kernels when the session optimises it; on this CPU it ran as fast as the QOperator form
(see docs/decisions.md). The final Softmax stays float: quantized to uint8 its probabilities would have
a resolution of 1/256, and close classes would tie.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .exporting import _nchw

INT8_ONNX_FILE = "model.int8.onnx"


class CalibrationImages:
    """An onnxruntime ``CalibrationDataReader`` over batches of NHWC [0, 1] images: the model's NCHW input."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self.input_name = input_name
        self._batches = batches
        self._iterator: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iterator, None)
        return None if batch is None else {self.input_name: _nchw(batch)}

    def rewind(self) -> None:
        self._iterator = iter(self._batches)


def _float_nodes(model: Any) -> list[str]:
    """The nodes kept in float: the Softmax that turns logits into probabilities."""
    return [node.name for node in model.graph.node if node.op_type == "Softmax"]


def quantize_onnx(out_dir: Path, model_file: str, calibration: list[np.ndarray]) -> str:
    """Write the int8 form of the ONNX model ``out_dir / model_file`` beside it; return its file name."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationImages, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="automl-tl-quantize-") as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(out_dir / model_file), str(prepared))
        model = onnx.load(str(prepared))
        input_name = model.graph.input[0].name
        quantize_static(
            str(prepared), str(out_dir / INT8_ONNX_FILE), Reader(input_name, calibration),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=_float_nodes(model),
        )
    return INT8_ONNX_FILE
