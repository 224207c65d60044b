"""The built-in Keras 3 (TensorFlow backend) adapter and keras.applications backbones."""
