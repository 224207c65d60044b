"""``python -m automl_tl`` runs the CLI."""

import os
import sys

# `python -m` puts the working directory first on sys.path, so any module or plugin metadata in a
# folder the user only cd-ed into would be importable. automl-tl imports nothing from there.
if not sys.flags.safe_path and sys.path and os.path.realpath(sys.path[0] or ".") == os.path.realpath(os.getcwd()):
    del sys.path[0]

from automl_tl.cli import entry_point  # noqa: E402  (after sys.path is cleaned)

entry_point()
