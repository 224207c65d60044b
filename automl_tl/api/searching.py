"""``automl_tl.search``: a search from Python, the same as ``automl-tl search`` with the same options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from automl_tl.api.study import Study
from automl_tl.errors import UserError


def search(data: str | Path | None = None, *, timeout: float | None = None, trials: int | None = None,
           study: str | None = None, storage: str | None = None, **options: Any) -> Study:
    """Search the transfer-learning recipe for the image folder (or CSV manifest) ``data``, or resume the study,
    and return it. ``timeout``: seconds, a promise kept as by the CLI; ``trials``: the study's total of finished
    trials; ``study``: its name (default: the folder's); ``storage``: an Optuna storage URL (default
    ``sqlite:///studies/NAME.db``). ``options`` are the CLI's flags with underscores and the same values, e.g.
    ``epochs=1, image_size=32, backbones="mobilenet_v2", cv="off", smart_start=False``; ``automl-tl search
    --help`` explains each. Bad input raises ``UserError`` with the CLI's paragraph. Without ``data`` the
    bundled sample is searched, and said so."""
    from automl_tl.api.options import command_args
    from automl_tl.api.running import running_command
    from automl_tl.api.search_commands import searched_study

    args = command_args("search", data=None if data is None else str(data), timeout=timeout, trials=trials,
                        study=study, storage=storage, **options)
    with running_command(args):
        name = searched_study(args)
    if name is None:
        raise UserError(f"search(timeout={timeout:g}): the time ran out before any study was opened, so there is no "
                        f"study to return. Give a larger timeout, or none.")
    return Study(name, storage, options.get("artifacts"))
