"""The PyTorch framework adapter: the object the core talks to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.cache.store import MemoryStore, store_from_env
from automl_tl.ensemble_types import EnsembleMember
from automl_tl.errors import UserError
from automl_tl.import_order import installed
from automl_tl.runtime.env_vars import THREADS
from automl_tl.types import BackboneSpec, ExportedModel, ImageTable, Preprocessing, TrialConfig

from .weights import weights_errors


def configure_cpu_threads() -> None:
    """One intra-op thread per CPU this process may use (its affinity and its container's quota;
    ``AUTOML_TL_THREADS`` overrides). The allocator is tuned by the CLI only, never in a host
    program that imports automl-tl (see automl_tl.runtime.memory.tune_allocator)."""
    import torch

    from automl_tl.runtime.threads import usable_cpus

    wanted = int(THREADS.value("0")) or usable_cpus()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


class TorchAdapter:
    """Implements automl_tl.types.FrameworkAdapter with torchvision backbones."""

    name = "torch"
    export_formats: tuple[str, ...] = ("onnx", "torchscript")  # first is the one suggested to users
    safe_formats: tuple[str, ...] = ("onnx",)  # onnxruntime runs no code from the file; torch.jit.load can
    quantize_formats: tuple[str, ...] = ("onnx",)  # export --quantize int8

    def __init__(self) -> None:
        self.cache = store_from_env()  # frozen-prefix activations on disk, shared by trials, runs and workers
        self._prototypes: dict[str, Any] = {}  # pretrained backbones, built and loaded once per process
        self._digests: dict[str, str] = {}  # the prototypes' weight digests, each checked against a second build

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

            with weights_errors(spec):
                self._prototypes[spec.name] = build_block_stack(spec, pretrained=True).eval()
        return self._prototypes[spec.name]

    def inference_latency(self, spec: BackboneSpec, config: TrialConfig, num_classes: int) -> dict[str, float]:
        """Median ms per call of the ONNX export of ``config``'s architecture in onnxruntime on this CPU, at
        batch 1 and 32 (``batch_1_ms``, ``batch_32_ms``); the core caches it per architecture (see latency.py)."""
        from .latency import onnx_latency

        return onnx_latency(spec, config, num_classes, self.prototype(spec))

    def backbone_digest(self, spec: BackboneSpec) -> str | None:
        """A digest of the pretrained weights trials of ``spec`` start from and ``load`` rebuilds onto (the
        prototype's parameters and buffers, in order); None for a from-scratch backbone. The first call
        per backbone builds it a second time: a factory that ignores ``pretrained=True`` (new random
        weights on every build) is refused here, before a trial trains on weights no export can rebuild."""
        if not spec.pretrained:
            return None
        if spec.name not in self._digests:
            from .cache import module_digest
            from .model import build_block_stack

            digest = module_digest([self.prototype(spec)])
            with weights_errors(spec):
                again = module_digest([build_block_stack(spec, pretrained=True)])
            if again != digest:
                raise UserError(
                    f"Backbone {spec.name!r}: two builds with pretrained=True gave different weights (digests "
                    f"{digest[:12]} and {again[:12]}), so its factory ignores pretrained=True or loads weights that "
                    f"change from build to build. A trial saves only what it trained, and export rebuilds the rest "
                    f"from the factory: the exported model would not be the one that was scored. Make "
                    f"factory(True) load the same pretrained weights every time, or register the backbone without "
                    f"`weights` to train it from scratch."
                )
            self._digests[spec.name] = digest
        return self._digests[spec.name]

    def block_features(self, spec: BackboneSpec, data: ImageTable, block: int) -> np.ndarray:
        import torch

        from .cache import PrefixFeatures
        from .model import build_block_stack

        configure_cpu_threads()
        with weights_errors(spec):
            stack = build_block_stack(spec, pretrained=spec.pretrained)
        stack = stack.to(self.device).to(memory_format=torch.channels_last)
        # A from-scratch backbone is new random weights each time: its activations must not be shared.
        store = self.cache if spec.pretrained else MemoryStore()
        features = PrefixFeatures(store, spec.name, data, stack, spec.mean, spec.std, self.device)
        return np.asarray(features.pooled(block), dtype=np.float32)

    def block_seconds(self, spec: BackboneSpec, image_size: int) -> list[float]:
        """Seconds per image of each block of ``spec`` run forward at ``image_size`` on this machine, as trials
        run them (channels-last, on the adapter's device): the core caches them and predicts trial costs."""
        import torch

        from automl_tl.cache.block_timing import probe_table, time_blocks

        from .cache import PrefixFeatures
        from .model import build_block_stack

        configure_cpu_threads()
        stack = self.prototype(spec)
        if stack is None:  # from scratch: random weights run as fast as trained ones
            with weights_errors(spec):
                stack = build_block_stack(spec, pretrained=False)
        stack = stack.to(self.device).to(memory_format=torch.channels_last)
        prefix = PrefixFeatures(MemoryStore(), spec.name, probe_table(image_size), stack, spec.mean, spec.std, self.device)
        return time_blocks(prefix)

    def prefix_activations(self, spec: BackboneSpec, data: ImageTable) -> Any:
        """The frozen-prefix activations of ``spec``'s pretrained backbone over ``data``, through the shared cache,
        to ask which of them are stored (``stored_block``, ``pooled_stored``); None for a from-scratch backbone,
        whose activations are never shared. Builds nothing but the prototype."""
        from .cache import PrefixFeatures

        stack = self.prototype(spec)
        if stack is None:
            return None
        return PrefixFeatures(self.cache, spec.name, data, stack, spec.mean, spec.std, self.device)

    def load(self, spec: BackboneSpec, directory: Path, num_classes: int, config: TrialConfig) -> Any:
        """The saved trial over a copy of the prototype: the very weights ``backbone_digest`` describes."""
        import torch

        from .session import load_trained

        model = load_trained(spec, directory, num_classes, config, prototype=self.prototype(spec))
        return model.cpu().to(memory_format=torch.contiguous_format)  # trials may have moved the prototype

    def combine(self, members: Sequence[EnsembleMember], preprocessing: Preprocessing) -> Any:
        """Several loaded trials as one model averaging their probabilities (``export --ensemble``): members of
        one backbone run its pretrained blocks once, up to where each one's own trained blocks begin. A
        member's claimed pretrained prefix is checked block by block against the prototype."""
        from .ensemble import combine, pristine_block_count

        checked = [replace(m, pristine_blocks=pristine_block_count(m.model, self.prototype(m.spec), m.pristine_blocks))
                   for m in members]
        return combine(checked, preprocessing)

    def flip_average(self, model: Any, preprocessing: Preprocessing) -> Any:
        """``model`` (a loaded trial or a combined ensemble) averaged over each image and its mirror, as one
        graph that ``export`` and ``predict_loaded`` take like the model itself (``export --flip``)."""
        from .model import FlipAveraged

        return FlipAveraged(model).eval()

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

    def quantize(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path, model_file: str,
                 calibration: list[np.ndarray]) -> str:
        """The int8 ONNX file of the ONNX export ``model_file``, calibrated on ``calibration``; see quantizing.py."""
        from .quantizing import quantize_onnx

        if fmt != "onnx":
            raise ValueError(f"the torch adapter quantizes onnx exports, not {fmt!r}")
        return quantize_onnx(out_dir, model_file, calibration)

    def load_exported(self, out_dir: Path, fmt: str, model_file: str, trusted: bool = False) -> ExportedModel:
        from .exporting import load_exported_model

        return load_exported_model(out_dir, fmt, model_file, trusted)
