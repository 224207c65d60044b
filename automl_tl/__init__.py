"""automl-tl: search the whole transfer-learning recipe with Optuna.

The Python API, for notebooks and scripts (the CLI runs the same code)::

    import automl_tl

    study = automl_tl.search("flower_photos", timeout=600)
    study.leaderboard()                     # a DataFrame (pandas installed) or a list of records
    model = study.export("exports/flowers", format="onnx")
    model.predict("some_photo.jpg")
    study.plot_history()                    # shown inline in Jupyter

Names are imported on first use: ``import automl_tl`` stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ExportedModel", "Picture", "Study", "UserError", "load_model", "open_study", "search"]

if TYPE_CHECKING:
    from automl_tl.api.model import ExportedModel, load_model
    from automl_tl.api.pictures import Picture
    from automl_tl.api.searching import search
    from automl_tl.api.study import Study, open_study
    from automl_tl.errors import UserError


def __getattr__(name: str) -> Any:
    if name == "UserError":
        from automl_tl.errors import UserError

        return UserError
    if name in __all__:
        from automl_tl import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
