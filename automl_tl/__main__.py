"""``python -m automl_tl`` runs the CLI."""

from .cli import entry_point

entry_point()
