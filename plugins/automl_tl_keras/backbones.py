"""keras.applications backbones declared as data: block ends, feature size, input scaling, weights.

A block ends at a layer whose output is the only tensor that later layers read (a clean cut of
the graph), so activations there can be cached and fine-tuning can start from them. The last
block always ends at the model's output, written ``OUTPUT``; ``input:NAME`` is the tensor that
layer NAME reads, for cuts after an operation that is not a layer. Only layer names that
keras.applications sets itself are used (auto-numbered names such as ``re_lu_3`` are not stable).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl_tl.types import BackboneSpec, WeightsInfo

from .cut_points import OUTPUT

PIXELS_0_255 = ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))  # models that rescale inside expect 0..255
MINUS_ONE_TO_ONE = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # x / 127.5 - 1, Keras' MobileNetV2 preprocessing


def keras_models_dir() -> Path:
    from .port_weights import keras_models_dir as models_dir

    return models_dir()


def weights_file(name: str) -> Callable[[], bool]:
    return lambda: (keras_models_dir() / name).is_file()


def ported_normalisation(file_name: str) -> dict[str, Any] | None:
    """Normalisation recorded beside weights that automl-tl ported from torchvision, if any."""
    side = keras_models_dir() / (file_name + ".automl-tl.json")
    return json.loads(side.read_text()) if side.is_file() else None


def keras_factory(app_name: str, torch_port: bool = False, caffe: bool = False) -> Callable[[bool], Any]:
    def build(pretrained: bool) -> Any:
        from .model import build_application

        return build_application(app_name, pretrained, torch_port=torch_port, caffe=caffe)

    build.__name__ = f"build_{app_name}"
    return build


def mobilenet_v2_blocks() -> list[str]:
    ends = ["Conv1_relu", "expanded_conv_project_BN"]
    residual = {2, 4, 5, 7, 8, 9, 11, 12, 14, 15}
    ends += [f"block_{i}_add" if i in residual else f"block_{i}_project_BN" for i in range(1, 17)]
    return ends + [OUTPUT]


def mobilenet_v3_blocks(residual: set[int], count: int) -> list[str]:
    ends = ["conv_bn"]
    for i in range(count):
        prefix = "expanded_conv" if i == 0 else f"expanded_conv_{i}"
        ends.append(f"{prefix}_add" if i in residual else f"{prefix}_project_bn")
    return ends + [OUTPUT]


def efficientnet_b0_blocks() -> list[str]:
    ends = ["stem_activation"]
    for stage, repeats in enumerate([1, 2, 2, 3, 3, 4, 1], start=1):
        for r in range(repeats):
            letter = "abcdefgh"[r]
            ends.append(f"block{stage}{letter}_project_bn" if r == 0 else f"block{stage}{letter}_add")
    return ends + [OUTPUT]


CAFFE_MEAN_RGB = (123.68 / 255, 116.779 / 255, 103.939 / 255)  # Keras' ResNet50 "caffe" mode, in RGB order


def resnet50_blocks() -> list[str]:
    ends = ["pool1_pool"]
    for stage, repeats in zip(range(2, 6), [3, 4, 6, 3]):
        ends.extend(f"conv{stage}_block{b}_out" for b in range(1, repeats + 1))
    ends[-1] = OUTPUT
    return ends


def convnext_tiny_blocks() -> list[str]:
    """ConvNeXt adds each block's residual with an operation, not a layer, so a block ends at the
    input of the next layer (``input:NAME``)."""
    ends = ["convnext_tiny_stem"]
    depths = [3, 3, 9, 3]
    for stage, depth in enumerate(depths):
        if stage:
            ends.append(f"input:convnext_tiny_stage_{stage}_block_0_depthwise_conv")  # after downsampling
        for b in range(depth):
            if b + 1 < depth:
                ends.append(f"input:convnext_tiny_stage_{stage}_block_{b + 1}_depthwise_conv")
            elif stage + 1 < len(depths):
                ends.append(f"input:convnext_tiny_downsampling_block_{stage}")
            else:
                ends.append(OUTPUT)
    return ends


def _spec(app: str, blocks: list[str], dim: int, weights_name: str, scaling: tuple, **options: Any) -> BackboneSpec:
    ported = ported_normalisation(weights_name) if options.get("torch_port") else None
    mean, std = (tuple(ported["mean"]), tuple(ported["std"])) if ported else scaling
    return BackboneSpec(
        name=app, framework="keras", factory=keras_factory(app, bool(ported), bool(options.get("caffe"))),
        blocks=tuple(blocks), feature_dim=dim,
        default_image_size=224, mean=mean, std=std,
        weights=WeightsInfo(source=f"keras.applications.{app}(weights='imagenet')" + (" (ported from torchvision)" if ported else ""),
                            is_available=weights_file(weights_name), where=f"Keras cache ({keras_models_dir()})"),
        options={"app": app, **options},
    )


def keras_backbones() -> list[BackboneSpec]:
    return [
        _spec("MobileNetV3Small", mobilenet_v3_blocks({2, 4, 5, 7, 9, 10}, 11), 576,
              "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", PIXELS_0_255),
        _spec("MobileNetV2", mobilenet_v2_blocks(), 1280,
              "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", MINUS_ONE_TO_ONE, torch_port=True),
        _spec("MobileNetV3Large", mobilenet_v3_blocks({0, 2, 4, 5, 7, 8, 9, 11, 13, 14}, 15), 960,
              "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", PIXELS_0_255),
        _spec("EfficientNetB0", efficientnet_b0_blocks(), 1280, "efficientnetb0_notop.h5", PIXELS_0_255),
        _spec("ResNet50", resnet50_blocks(), 2048, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
              (CAFFE_MEAN_RGB, PIXELS_0_255[1]), caffe=True),
        _spec("ConvNeXtTiny", convnext_tiny_blocks(), 768, "convnext_tiny_notop.h5", PIXELS_0_255),
    ]
