"""Text that comes from users and plugins (labels, file names, errors, plugin and backbone names) is
printed as it is, never read as rich markup: "[/]" must not crash a command or a search, and
"[bold red]x" must not turn into a bold red "x"."""

from __future__ import annotations

import csv
import shutil
from io import StringIO
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.cli import main
from automl_tl.storage.urls import storage_url
from automl_tl.tuning.progress import SearchProgress
from automl_tl.types import Phase

ERROR = "boom [/] [bold red]x"

# A single-file plugin (its file name becomes the plugin name "file:[b]p.py") with two backbones whose
# names are markup. Its framework is the stub's, renamed; the first trial it starts raises ERROR.
PLUGIN = f'''
import dataclasses

from automl_tl.hookspecs import hookimpl
from tests.support.sample_plugins.stub_plugin import StubAdapter, StubSession, stub_spec


class FirstTrialExplodes(StubAdapter):
    name = "markup"
    export_formats = ("[/]fmt",)  # suggested in the search's closing line

    def __init__(self):
        self.started = 0

    def start_trial(self, spec, config, data):
        self.started += 1
        session = StubSession(config, data)
        if self.started == 1:
            def explode(*args):
                raise RuntimeError({ERROR!r})
            session.train_epoch = session.set_linear_head = explode  # a head of epochs, or a fitted one
        return session


@hookimpl
def register_frameworks(register):
    register(FirstTrialExplodes())


@hookimpl
def register_backbones(register):
    for name in ("[/]net", "[bold red]x"):
        register(dataclasses.replace(stub_spec(name), framework="markup"))
'''

BROKEN_PLUGIN = '''
from automl_tl.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    raise RuntimeError("bad [/] [bold red]x")
'''


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "[b]p.py"
    path.write_text(PLUGIN)
    return str(path)


def test_a_backbone_error_with_markup_fails_only_its_trial_and_show_prints_it(capsys, small_sample, plugin):
    code = main(["search", str(small_sample), "--study", "mk", "--trials", "2", "--plugin", plugin,
                 "--framework", "markup", "--epochs", "2", "--image-size", "16"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"failed: RuntimeError: {ERROR}" in out
    assert "--format [/]fmt" in out, "the plugin's export format, in the closing hint"
    study = optuna.load_study(study_name="mk", storage=storage_url("mk", None))
    states = [t.state for t in study.get_trials()]
    assert states.count(TrialState.FAIL) == 1
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 2, "the search went on"
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    assert completed, "the stub's deterministic accuracy completes a trial here"
    assert all(t.params["backbone"] in out for t in completed), "trial lines and leaderboard show the name as it is"

    assert main(["show", "mk"]) == 0
    shown = capsys.readouterr().out
    assert f"failed trial 0: RuntimeError: {ERROR}" in shown
    best = study.best_trial.params["backbone"]
    assert f"backbone={best}" in shown and best in shown.split("Leaderboard", 1)[1]
    assert "Smart start" in out and "[/]net" in out.split("Smart start", 1)[1], "the profile's backbone, as it is"


def test_predict_prints_markup_labels_and_file_names_as_they_are(capsys, small_sample, tmp_path):
    data = tmp_path / "data"
    rows = []
    for folder, label in (("cat", "[/]"), ("dog", "[bold red]x")):
        for image in sorted((small_sample / folder).glob("*.png")):
            target = data / "images" / f"{folder}_{image.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(image, target)
            rows.append((f"images/{target.name}", label))
    with open(data / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("path", "label"), *rows])
    assert main(["search", str(data / "labels.csv"), "--study", "labels", "--trials", "1", "--backbones", "small_cnn",
                 "--epochs", "1", "--image-size", "16", "--no-smart-start"]) == 0
    export = tmp_path / "export"
    assert main(["export", "labels", "--format", "onnx", "-o", str(export)]) == 0
    inputs = tmp_path / "[bold]in"
    inputs.mkdir()
    shutil.copy(next((small_sample / "cat").glob("*.png")), inputs / "[red]a.png")
    (inputs / "[bold]b.png").write_bytes(b"not an image [/]")
    capsys.readouterr()

    assert main(["predict", str(export), str(inputs), "--top", "2"]) == 2  # one input is not an image
    out = capsys.readouterr().out
    assert f"{inputs / '[red]a.png'}: " in out
    line = next(line for line in out.splitlines() if "[red]a.png" in line)
    assert "[/] 0." in line and "[bold red]x 0." in line
    assert f"{inputs / '[bold]b.png'}: unreadable" in out


def test_backbones_and_plugins_show_markup_names_as_they_are(capsys, plugin, tmp_path):
    assert main(["backbones", "--framework", "markup", "--plugin", plugin]) == 0
    out = capsys.readouterr().out
    assert "[/]net" in out and "[bold red]x" in out and "file:[b]p.py" in out

    broken = tmp_path / "[b]broken.py"
    broken.write_text(BROKEN_PLUGIN)
    assert main(["plugins", "--plugin", plugin, "--plugin", str(broken)]) == 0
    captured = capsys.readouterr()
    out, err = captured.out, " ".join(captured.err.split())
    assert err.startswith("warning ") and "bad" in err and "[b]broken.py" in err  # the CLI's one line, name as it is
    assert "file:[b]p.py" in out and "file:[b]broken.py" in out and "[/]net" in out
    assert "[bold red]x" in " ".join(out.split())


def test_progress_shows_a_backbone_name_as_it_is():
    console = Console(file=StringIO(), width=200)
    progress = SearchProgress(console, 3, 0, None, bars=False)
    config = SimpleNamespace(backbone="[/]net", epochs=2)
    progress.trial_started(0, config)
    console.print(progress.progress.get_renderable())
    progress.epoch_done(0, config, SimpleNamespace(epoch=0, phase=Phase.HEAD, val_accuracy=0.5))
    console.print(progress.progress.get_renderable())
    shown = console.file.getvalue()
    assert "[/]net · preparing" in shown and "[/]net · head" in shown


def test_leaderboard_shows_the_studys_name_parameters_and_attributes_as_they_are():
    """A study in a shared database may hold values automl-tl did not write; show prints them as they are."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    from automl_tl.report.leaderboard import leaderboard_table

    params = {"backbone": "net", "head_units": "[/]h", "switch_epoch": "[bold red]2", "unfrozen_bn": "[/]bn"}
    study = optuna.create_study(study_name="[bold red]s", direction="maximize")
    study.add_trial(create_trial(value=0.5, params=params,
                                 distributions={k: CategoricalDistribution([v]) for k, v in params.items()},
                                 user_attrs={"blocks": "[/]b", "depth": "[/]d", "frozen_blocks": 1}))
    console = Console(file=StringIO(), width=250)
    console.print(leaderboard_table(study))
    shown = console.file.getvalue()
    for text in ("'[bold red]s'", "[/]h", "[bold red]2", "[/]bn", "[/]d/[/]b", "1/[/]d"):
        assert text in shown, text
