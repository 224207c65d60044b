"""A tiny Keras backbone declared inline, the way a plugin author would declare one."""

from __future__ import annotations

from automl_tl.types import BackboneSpec, WeightsInfo


def _tiny_keras_model(pretrained: bool):
    import keras

    inputs = keras.Input((None, None, 3))
    x = inputs
    for i in range(4):
        x = keras.layers.Conv2D(8, 3, strides=2 if i % 2 else 1, padding="same", name=f"b{i}_conv",
                                kernel_initializer=keras.initializers.GlorotUniform(seed=100 + i if pretrained else None))(x)
        x = keras.layers.BatchNormalization(name=f"b{i}_bn")(x)
        x = keras.layers.ReLU(name=f"b{i}_relu")(x)
    return keras.Model(inputs, x, name="tiny_keras")


def tiny_keras_spec(name: str = "tiny_keras") -> BackboneSpec:
    return BackboneSpec(
        name=name, framework="keras", factory=_tiny_keras_model,
        blocks=("b0_relu", "b1_relu", "b2_relu", "<output>"), feature_dim=8, default_image_size=16,
        weights=WeightsInfo(source="seeded stand-in", is_available=lambda: True),
    )
