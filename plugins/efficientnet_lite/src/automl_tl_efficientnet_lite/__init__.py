"""EfficientNet-Lite0, Lite1 and Lite2 as automl-tl backbones (see plugin.py)."""
