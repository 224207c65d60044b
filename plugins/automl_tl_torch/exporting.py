"""TorchScript and ONNX export of a trained classifier, and runtimes that load them back."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from automl_tl.errors import UserError
from automl_tl.types import Preprocessing

TORCHSCRIPT_FILE = "model.torchscript.pt"
ONNX_FILE = "model.onnx"


def _nchw(batch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(batch.astype(np.float32, copy=False), (0, 3, 1, 2)))


def export_model(classifier: object, preprocessing: Preprocessing, fmt: str, out_dir: Path) -> str:
    import torch

    from .model import NormalisedClassifier

    wrapped = NormalisedClassifier(classifier, preprocessing.mean, preprocessing.std).eval()  # type: ignore[arg-type]
    example = torch.rand(2, 3, preprocessing.image_size, preprocessing.image_size)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(wrapped, example)
        traced.save(str(out_dir / TORCHSCRIPT_FILE))
        return TORCHSCRIPT_FILE
    if fmt == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (example,),
                str(out_dir / ONNX_FILE),
                input_names=["image"],
                output_names=["probabilities"],
                dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
                dynamo=False,
                opset_version=17,
            )
        return ONNX_FILE
    raise ValueError(f"unknown torch export format {fmt!r}")


class TorchScriptModel:
    """An exported TorchScript model: NHWC [0, 1] in, probabilities out. ``torch.jit.load`` is not
    weights-only: the file's code runs, so only trusted folders get here (see load_exported_model)."""

    def __init__(self, path: Path) -> None:
        import torch

        self._torch = torch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated but TorchScript is asked for
            self.module = torch.jit.load(str(path), map_location="cpu").eval()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            return self.module(self._torch.from_numpy(_nchw(batch))).numpy()


class OnnxModel:
    """An exported ONNX model run by onnxruntime (no torch needed)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: _nchw(batch)})[0]


def load_exported_model(out_dir: Path, fmt: str, model_file: str, trusted: bool = False) -> TorchScriptModel | OnnxModel:
    """The export's model; TorchScript only when ``trusted``, since loading it can run code from the file."""
    path = out_dir / model_file
    if fmt == "torchscript":
        if not trusted:
            raise UserError(f"{path}: TorchScript can run code from the file when it is loaded, so it is loaded only "
                            f"from a trusted folder (--trust-model). An onnx export loads without running code.")
        return TorchScriptModel(path)
    if fmt == "onnx":
        return OnnxModel(path)
    raise ValueError(f"unknown torch export format {fmt!r}")
