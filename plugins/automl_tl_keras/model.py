"""Build keras.applications backbones, cut them at block ends, and put a new head on top."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from .quiet_tensorflow import import_tensorflow_quietly

import_tensorflow_quietly()  # torchvision first; TensorFlow's log lines to the log, never into the display

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402, F401  (other modules take tf from here)

from automl_tl.plugin.spec_checks import find_blocks  # noqa: E402

from .cut_points import OUTPUT, input_of  # noqa: E402

TORCH_BN_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="automl_tl")
class SymmetricPadConv2D(keras.layers.Conv2D):
    """A strided convolution padded like torch (kernel // 2 on every side), not like TF's "same"."""

    def call(self, inputs: Any) -> Any:
        pad = self.kernel_size[0] // 2
        return super().call(keras.ops.pad(inputs, [[0, 0], [pad, pad], [pad, pad], [0, 0]]))


@keras.saving.register_keras_serializable(package="automl_tl")
class HorizontalMirror(keras.layers.Layer):
    """NHWC images mirrored left-right (``export --flip``); registered, so a ``.keras`` file loads in safe mode."""

    def call(self, inputs: Any) -> Any:
        return keras.ops.flip(inputs, axis=2)


def flip_averaged(model: Any, image_size: int) -> Any:
    """``model`` (normalised NHWC in, probabilities out) averaged over each image and its mirror."""
    inputs = keras.Input((image_size, image_size, 3), name="normalised_image")
    mirrored = HorizontalMirror(name="mirror")(inputs)
    averaged = keras.layers.Average(name="flip_average")([model(inputs), model(mirrored)])
    return keras.Model(inputs, averaged, name="automl_tl_flip_averaged")


def _torch_compatible_layer(layer: Any) -> Any:
    """Layer replacements that make Keras' MobileNetV2 compute exactly what torchvision's does."""
    config = layer.get_config()
    if isinstance(layer, keras.layers.BatchNormalization):
        config["epsilon"] = TORCH_BN_EPSILON
        return keras.layers.BatchNormalization.from_config(config)
    if isinstance(layer, keras.layers.ZeroPadding2D):
        config["padding"] = ((1, 1), (1, 1))
        return keras.layers.ZeroPadding2D.from_config(config)
    if type(layer) is keras.layers.Conv2D and config["padding"] == "same" and tuple(config["strides"]) != (1, 1):
        config["padding"] = "valid"
        return SymmetricPadConv2D.from_config(config)
    return layer.__class__.from_config(config)


def torch_compatible(model: Any) -> Any:
    clone = keras.models.clone_model(model, clone_function=_torch_compatible_layer)
    clone.set_weights(model.get_weights())
    return clone


def build_application(app: str, pretrained: bool, torch_port: bool = False, caffe: bool = False) -> Any:
    """The keras.applications model without its top, for any input size."""
    constructor = getattr(keras.applications, app)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input_shape. is undefined.*")  # any size is fine without a top
        model = constructor(include_top=False, weights="imagenet" if pretrained else None, input_shape=(None, None, 3))
    if torch_port:
        model = torch_compatible(model)
    if caffe and pretrained:
        # Caffe-style weights expect BGR: flip the first convolution's input channels so RGB works.
        first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
        kernel, *rest = first.get_weights()
        first.set_weights([kernel[:, :, ::-1, :], *rest])
    return model


def cut_tensors(model: Any, blocks: Sequence[str]) -> list[Any]:
    """The output tensor of each block, in order."""

    def tensor(name: str) -> Any:
        if name == OUTPUT:
            return model.output
        if input_of(name) is not None:
            return model.get_layer(input_of(name)).input
        return model.get_layer(name).output

    return find_blocks(blocks, tensor, lambda: [layer.name for layer in model.layers])


def build_head(feature_dim: int, hidden_units: int, dropout: float, num_classes: int) -> Any:
    layers: list[Any] = [keras.Input((feature_dim,)), keras.layers.Dropout(dropout)]
    if hidden_units > 0:
        layers += [keras.layers.Dense(hidden_units, activation="relu"), keras.layers.Dropout(dropout)]
    layers.append(keras.layers.Dense(num_classes, activation="softmax"))
    return keras.Sequential(layers, name="head")


def full_classifier(base: Any, head: Any, top: Any = None) -> Any:
    """Backbone (up to the ``top`` tensor, its output by default), global average pooling and head as
    one model: normalised NHWC in, probabilities out."""
    top = base.output if top is None else top
    return keras.Model(base.input, head(keras.layers.GlobalAveragePooling2D()(top)))
