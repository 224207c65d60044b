"""automl-tl: search the whole transfer-learning recipe with Optuna."""

__version__ = "0.1.0"
