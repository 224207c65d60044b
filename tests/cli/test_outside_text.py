"""Text from outside (errors from data and plugins, file names, study names, labels) reaches every
human-readable output with its control characters escaped: a trial's log line, show, studies, plugins,
the error paragraph, argparse's usage errors, the progress bar and the HTML report. And a Ctrl-C says
what is true of the command it stopped."""

from __future__ import annotations

import re
from io import StringIO
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import create_trial
from rich.console import Console

from automl_tl.cli import main
from automl_tl.report.best_model import BestModelResults
from automl_tl.report.leaderboard import leaderboard_table
from automl_tl.report.page import best_model_section, summary_section
from automl_tl.report.top_losses import Mistake
from automl_tl.tuning.progress import SearchProgress
from automl_tl.types import Phase

HOSTILE = "boom\x1b[2J\x1b[31m\x07\nforged.png: cat 1.000\r\x9b1m\u202eevil"
SHOWN = "boom\\x1b[2J\\x1b[31m\\x07\\nforged.png: cat 1.000\\r\\x9b1m\\u202eevil"
ACTED_ON = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def assert_shown(text: str, *, where: str) -> None:
    """No character a terminal acts on (a line break only where the tool itself ends a line), no forged
    line, and the hostile text's escapes visible, once the output's own line wrapping is undone."""
    assert not ACTED_ON.findall(text), f"{where}: raw control characters {ACTED_ON.findall(text)!r} in {text!r}"
    assert not any(line.lstrip().startswith("forged.png") for line in text.splitlines()), f"{where}: a forged line"
    assert SHOWN in "".join(text.split("\n")) or SHOWN.replace(" ", "") in re.sub(r"\s", "", text), f"{where}: {text!r}"


# A single-file plugin whose framework is the stub's, renamed; the first trial it starts raises HOSTILE.
PLUGIN = f'''
import dataclasses

from automl_tl.hookspecs import hookimpl
from tests.support.sample_plugins.stub_plugin import StubAdapter, StubSession, stub_spec


class FirstTrialExplodes(StubAdapter):
    name = "hostile"

    def __init__(self):
        self.started = 0

    def start_trial(self, spec, config, data):
        self.started += 1
        session = StubSession(config, data)
        if self.started == 1:
            def explode(*args):
                raise RuntimeError({HOSTILE!r})
            session.train_epoch = session.set_linear_head = explode  # a head of epochs, or a fitted one
        return session


@hookimpl
def register_frameworks(register):
    register(FirstTrialExplodes())


@hookimpl
def register_backbones(register):
    register(dataclasses.replace(stub_spec("hostile_net"), framework="hostile"))
'''

BROKEN_PLUGIN = f'''
from automl_tl.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    raise RuntimeError({HOSTILE!r})
'''


def test_a_trials_error_is_escaped_in_the_search_log_and_in_show(capsys, small_sample, tmp_path):
    plugin = tmp_path / "hostile.py"
    plugin.write_text(PLUGIN)
    code = main(["search", str(small_sample), "--study", "h", "--trials", "2", "--plugin", str(plugin),
                 "--framework", "hostile", "--epochs", "1", "--image-size", "16", "--no-smart-start"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert_shown(captured.out, where="search")
    assert main(["show", "h"]) == 0
    assert_shown(capsys.readouterr().out, where="show")


def test_a_plugins_error_is_escaped_in_its_warning_and_in_the_plugins_table(capsys, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(BROKEN_PLUGIN)
    assert main(["plugins", "--plugin", str(broken)]) == 0
    captured = capsys.readouterr()
    for text in (captured.err, captured.out):  # the warning is one line: its whitespace runs become one space
        assert not ACTED_ON.findall(text) and "\\x1b[2J\\x1b[31m\\x07" in text and "\\u202eevil" in text, text
        assert not any(line.lstrip().startswith("forged.png") for line in text.splitlines())


def test_the_error_paragraph_escapes_a_file_name(capsys, tmp_path):
    folder = tmp_path / HOSTILE.replace("/", "_").replace("\x00", "")
    assert main(["predict", str(folder), "x.png"]) == 2
    captured = capsys.readouterr()
    assert_shown(captured.err, where="error paragraph")
    assert captured.err.count("\n") == len(captured.err.splitlines()), "only the console's own line ends"


def test_usage_errors_escape_the_words_they_quote(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["studies", HOSTILE])
    assert stopped.value.code == 2
    assert_shown(capsys.readouterr().err, where="usage error")


def test_studies_and_the_leaderboard_escape_what_a_shared_database_holds(capsys, isolated_studies):
    isolated_studies.mkdir(parents=True, exist_ok=True)
    params = {"backbone": HOSTILE, "head_units": "64"}
    study = optuna.create_study(study_name=HOSTILE, direction="maximize",
                                storage=f"sqlite:///{isolated_studies / 'shared.db'}")
    study.add_trial(create_trial(value=0.5, params=params,
                                 distributions={k: CategoricalDistribution([v]) for k, v in params.items()}))
    assert main(["studies"]) == 0
    out = capsys.readouterr().out
    assert not ACTED_ON.findall(out) and "\\x1b[2J" in out and "\\u202eevil" in re.sub(r"\s", "", out)
    for terminal in (False, True):
        console = Console(file=StringIO(), width=400, force_terminal=terminal, color_system=None)
        console.print(leaderboard_table(study))
        assert_shown(console.file.getvalue(), where=f"leaderboard (terminal: {terminal})")


def test_the_progress_bar_and_trial_lines_escape_a_backbone_name():
    console = Console(file=StringIO(), width=400)
    progress = SearchProgress(console, 3, 0, None, bars=False)
    config = SimpleNamespace(backbone=HOSTILE, epochs=2)
    progress.trial_started(0, config)
    console.print(progress.progress.get_renderable())
    progress.epoch_done(0, config, SimpleNamespace(epoch=0, phase=Phase.HEAD, val_accuracy=0.5))
    console.print(progress.progress.get_renderable())
    assert_shown(console.file.getvalue(), where="progress")


def test_the_report_escapes_class_names_and_the_data_location():
    study = optuna.create_study(study_name="r", direction="maximize")
    study.set_user_attr("class_names", [HOSTILE, "cat$\\frac$"])
    study.set_user_attr("data_location", HOSTILE)
    names = [HOSTILE, "cat$\\frac$"]  # a $ would start matplotlib mathtext; \frac without arguments cannot parse
    results = BestModelResults(0, names, np.array([[3, 1], [0, 4]]), np.array([1.0, 0.8]), np.array([0.75, 1.0]),
                               [Mistake(np.zeros((8, 8, 3), dtype=np.uint8), HOSTILE, "cat$\\frac$", 0.9, 0.1, HOSTILE)], 1)
    for html in (summary_section(study), best_model_section(results)):
        assert not ACTED_ON.findall(html) and "\n" not in html
        assert SHOWN in html and "cat$\\frac$" in html


@pytest.mark.parametrize(("command", "says", "never"), [
    ("cmd_export", "holds what it held before, or the complete new export", "resume"),
    ("cmd_predict", "writes nothing of yours", "resume"),
    ("cmd_report", "or the complete new report", "resume"),
    ("cmd_search", "Finished trials are saved; run the same command again to resume", "nothing of yours"),
])
def test_a_ctrl_c_says_what_is_true_of_the_command_it_stopped(capsys, monkeypatch, command, says, never):
    def stopped(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(f"automl_tl.api.parser.{command}", stopped)
    argv = {"cmd_export": ["export", "s", "--format", "onnx", "-o", "out"], "cmd_predict": ["predict", "m", "x.png"],
            "cmd_report": ["report", "s"], "cmd_search": ["search"]}[command]
    assert main(argv) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("Stopped.") and says in err and never not in err, err
