"""The built-in PyTorch adapter and torchvision backbones, loaded as an ordinary plugin."""
