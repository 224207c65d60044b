"""EfficientNet-Lite0 as an automl-tl backbone (see plugin.py)."""
