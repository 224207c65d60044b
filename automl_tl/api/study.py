"""``automl_tl.Study``: a study in its storage, as a notebook or a script uses it: the leaderboard, the best
trial, figures shown inline, the report and the export. Every method runs the same code as the CLI command
of the same name; the study is read afresh on each call (a search may still be adding trials)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl_tl.api.model import ExportedModel
from automl_tl.api.pictures import Picture
from automl_tl.errors import UserError


class Study:
    """The study ``name`` in ``storage`` (default ``sqlite:///studies/NAME.db``); ``artifacts``: where its trial
    weights are, if not where the study recorded them."""

    def __init__(self, name: str, storage: str | None = None, artifacts: str | None = None) -> None:
        self.name, self.storage, self.artifacts = name, storage, artifacts

    def optuna_study(self) -> Any:
        """The Optuna study, opened read-only (nothing is created or written)."""
        from automl_tl.api.common import load_study
        from automl_tl.api.running import without_secrets

        try:
            return load_study(self.name, self.storage)
        except UserError as exc:
            exc.args = (without_secrets(str(exc), self.storage),)
            raise

    def leaderboard(self, top: int | None = None) -> Any:
        """The completed trials, best first: a pandas DataFrame when pandas is installed, else a list of
        records (dicts). The test accuracy is the chosen model's only, as ``automl-tl show`` gives it."""
        from automl_tl.report.leaderboard import leaderboard_rows

        rows = leaderboard_rows(self.optuna_study(), top)
        try:
            import pandas
        except ImportError:
            return rows
        return pandas.DataFrame.from_records(rows).set_index("trial") if rows else pandas.DataFrame(rows)

    @property
    def best_trial(self) -> Any:
        """The chosen model's trial (Optuna's ``FrozenTrial``): the best by score, as export chooses it."""
        from automl_tl.tuning.budget import ranked_trials

        ranked = ranked_trials(self.optuna_study())
        if not ranked:
            raise UserError(f"Study {self.name!r} has no completed trial yet; run automl_tl.search(...) on it first.")
        return ranked[0]

    def export(self, path: str | Path, format: str | None = None, *, trial: int | None = None,
               ensemble: str | int | None = None, quantize: str | None = None, overwrite: bool = False,
               **options: Any) -> ExportedModel:
        """Export the chosen trial (or ``trial``, or an ``ensemble``: "auto" or a number of rounds) to the folder
        ``path``, parity-checked, as ``automl-tl export``. ``format``: by default the first its framework offers
        (onnx for torch, keras for keras); ``options``: the command's other flags with underscores (flip,
        max_latency_ms, max_accuracy_drop, data, plugin). Returns the exported model, ready to predict: the
        folder this call wrote is opened whatever its format (``load_model`` asks ``trust`` for another's)."""
        from automl_tl.api.model import load_model, plugin_list
        from automl_tl.deploy.export import best_export_format
        from automl_tl.plugin.manager import load_plugins

        plugin = plugin_list(options.get("plugin"))
        if format is None:
            format = best_export_format(self.optuna_study(), load_plugins(plugin_files=plugin))
        self._run("export", name=self.name, output=str(path), format=format, trial=trial, ensemble=ensemble,
                  quantize=quantize, overwrite=overwrite, storage=self.storage, artifacts=self.artifacts, **options)
        return load_model(path, trust=True, plugin=plugin)

    def report(self, path: str | Path = "report.html", *, overwrite: bool = False, **options: Any) -> Path:
        """Write the study's self-contained HTML report to ``path``, as ``automl-tl report``; returns the file."""
        self._run("report", name=self.name, output=str(path), overwrite=overwrite, storage=self.storage,
                  artifacts=self.artifacts, **options)
        return Path(path)

    def plot_history(self) -> Picture:
        """Each trial's score in order, the best so far, and pruned trials at their best epoch."""
        from automl_tl.report.figures import history

        return Picture.from_data_uri(history(self.optuna_study()), "optimisation history")

    def plot_curves(self, trials: int = 6) -> Picture:
        """The score after each epoch of the chosen trial and the next best (``trials`` panels in all), the
        head-only epochs shaded and the switch to fine-tuning marked, as in the report."""
        from automl_tl.report.curves import curves_figure
        from automl_tl.report.figures import png_data_uri

        figure = curves_figure(self.optuna_study(), trials)
        if figure is None:
            raise UserError(f"Study {self.name!r}: no learning curves: no completed trial has reported a whole epoch.")
        return Picture.from_data_uri(png_data_uri(figure), "learning curves")

    def plot_importances(self) -> Picture:
        """How much each parameter mattered to the score (PED-ANOVA); refused while too few trials can tell."""
        from automl_tl.report.figures import importances

        return self._picture(importances, "parameter importances", "too few completed trials, or too little "
                             "variation among them, to tell which parameters matter; run more trials")

    def plot_backbones(self) -> Picture:
        """The score against the frozen fraction and against the switch epoch, one colour per backbone."""
        from automl_tl.report.figures import by_backbone

        return Picture.from_data_uri(by_backbone(self.optuna_study()), "score by backbone")

    def plot_latency(self) -> Picture:
        """The score against the exported model's batch-1 latency, the Pareto front marked."""
        from automl_tl.report.figures import accuracy_latency

        return self._picture(accuracy_latency, "score against latency", "no completed trial has a measured latency")

    def _picture(self, draw: Callable[[Any], str | None], title: str, why_not: str) -> Picture:
        uri = draw(self.optuna_study())
        if uri is None:
            raise UserError(f"Study {self.name!r}: no {title} plot: {why_not}.")
        return Picture.from_data_uri(uri, title)

    def _run(self, command: str, **options: Any) -> None:
        from automl_tl.api.options import command_args
        from automl_tl.api.running import running_command

        args = command_args(command, **options)
        with running_command(args):
            args.func(args)

    def __repr__(self) -> str:
        from automl_tl.storage.urls import redact

        return f"<Study {self.name!r}{f' in {redact(self.storage)!r}' if self.storage else ''}>"  # no password shown


def open_study(name: str, storage: str | None = None, artifacts: str | None = None) -> Study:
    """An existing study; a clear ``UserError`` when there is none of that name."""
    study = Study(name, storage, artifacts)
    study.optuna_study()  # refused here, not at first use
    return study

