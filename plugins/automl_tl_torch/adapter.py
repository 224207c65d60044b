"""The PyTorch framework adapter: the object the core talks to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.cache.store import MemoryStore, store_from_env
from automl_tl.import_order import installed
from automl_tl.types import BackboneSpec, ExportedModel, ImageTable, Preprocessing, TrialConfig


def configure_cpu_threads() -> None:
    """Use every core for intra-op work (torch's default can be lower inside containers), and
    tune the allocator for training loops (see automl_tl.runtime.memory.tune_allocator)."""
    import torch

    from automl_tl.runtime.memory import tune_allocator

    tune_allocator()

    wanted = int(os.environ.get("AUTOML_TL_THREADS", "0")) or (os.cpu_count() or 1)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


class TorchAdapter:
    """Implements automl_tl.types.FrameworkAdapter with torchvision backbones."""

    name = "torch"
    export_formats = ("onnx", "torchscript")  # first is the one suggested to users
    safe_formats = ("onnx",)  # onnxruntime runs no code from the file; torch.jit.load can

    def __init__(self) -> None:
        self.cache = store_from_env()  # frozen-prefix activations on disk, shared by trials, runs and workers
        self._prototypes: dict[str, Any] = {}  # pretrained backbones, built and loaded once per process

    def is_installed(self) -> bool:
        return installed("torch") and installed("torchvision")

    @property
    def device(self) -> Any:
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        from automl_tl.import_order import torchvision_before_tensorflow

        torchvision_before_tensorflow()
        from .session import TorchTrialSession

        configure_cpu_threads()
        session = TorchTrialSession(spec, config, data, self.cache, self.device, self.prototype(spec))
        return session

    def prototype(self, spec: BackboneSpec) -> Any:
        """The whole pretrained backbone of ``spec``, built once; trials copy it. None for from-scratch ones."""
        if not spec.pretrained:
            return None
        if spec.name not in self._prototypes:
            from .model import build_block_stack

            self._prototypes[spec.name] = build_block_stack(spec, pretrained=True).eval()
        return self._prototypes[spec.name]

    def block_features(self, spec: BackboneSpec, data: ImageTable, block: int) -> np.ndarray:
        import torch

        from .cache import PrefixFeatures
        from .model import build_block_stack

        configure_cpu_threads()
        stack = build_block_stack(spec, pretrained=spec.pretrained).to(self.device, memory_format=torch.channels_last)
        # A from-scratch backbone is new random weights each time: its activations must not be shared.
        store = self.cache if spec.pretrained else MemoryStore()
        features = PrefixFeatures(store, spec.name, data, stack, spec.mean, spec.std, self.device)
        return np.asarray(features.pooled(block), dtype=np.float32)

    def load(self, spec: BackboneSpec, directory: Path, num_classes: int, config: TrialConfig) -> Any:
        from .session import load_trained

        return load_trained(spec, directory, num_classes, config)

    def predict_loaded(self, model: Any, preprocessing: Preprocessing, batch: np.ndarray) -> np.ndarray:
        import torch

        from .exporting import _nchw
        from .model import NormalisedClassifier

        wrapped = NormalisedClassifier(model, preprocessing.mean, preprocessing.std).eval()
        with torch.no_grad():
            return wrapped(torch.from_numpy(_nchw(batch))).numpy()

    def export(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path) -> str:
        from .exporting import export_model

        return export_model(model, preprocessing, fmt, out_dir)

    def load_exported(self, out_dir: Path, fmt: str, model_file: str, trusted: bool = False) -> ExportedModel:
        from .exporting import load_exported_model

        return load_exported_model(out_dir, fmt, model_file, trusted)
