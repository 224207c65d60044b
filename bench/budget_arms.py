"""The search arms of bench/budget.py: ``automl-tl search`` at the defaults, on this working tree ("new") or on the
code of an earlier commit ("before"), each in a fresh studies folder and a fresh cache; what its study recorded;
and the chosen model's accuracy on the held-out folder, at the end and along the way (the anytime curve).

The "before" code is the tree of ``--before-rev`` written out by ``git archive`` (read-only for the repository: no
worktree is registered, nothing in ``.git`` changes) and run by the same venv with ``PYTHONPATH`` naming that tree,
its plugins folder and the EfficientNet-Lite plugin's ``src`` first. The venv's editable installs put this tree's
packages on ``sys.meta_path`` after the path finder and its ``.pth`` adds the plugin's ``src`` after
``PYTHONPATH``, so the archived tree wins; ``probe_imports`` checks it for every module the entry points name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
CLI = str(PYTHON.parent / "automl-tl")  # the venv's entry point; sys.path[0] is then the venv's bin, not a cwd
STUDY = "budget"
# Environment settings that would change what the search does or where it keeps things; a benchmark at the defaults
# must not inherit them from the shell that started it.
_DROPPED_ENV = ("AUTOML_TL_CV", "AUTOML_TL_STORAGE", "AUTOML_TL_STUDIES", "AUTOML_TL_CACHE_DIR", "AUTOML_TL_CACHE_DTYPE",
                "AUTOML_TL_CACHE_GB", "AUTOML_TL_LOAD_PLUGINS", "AUTOML_TL_EPOCHS", "PYTHONPATH")


@dataclass(frozen=True)
class Code:
    """Which automl-tl an arm runs: this working tree (``tree`` is the repository) or an archived commit."""

    name: str
    tree: Path
    commit: str

    @property
    def pythonpath(self) -> list[str]:
        """What goes first on ``sys.path``: the arm's tree, also for this working tree, whose checkout may be a
        ``git worktree`` beside the one the venv's editable install names (a frozen copy to time while work goes on)."""
        return [str(self.tree), str(self.tree / "plugins"), str(self.tree / "plugins" / "efficientnet_lite" / "src")]

    def env(self, folder: Path) -> dict[str, str]:
        """The environment of one run: a studies folder and a cache (activations and decoded images) of its own."""
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env.update(AUTOML_TL_STUDIES=str(folder / "studies"), AUTOML_TL_CACHE_DIR=str(folder / "cache"))
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        return env


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def this_tree() -> Code:
    """The working tree as it is now (its uncommitted changes included)."""
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return Code("new", ROOT, git("rev-parse", "HEAD") + ("+changes" if dirty else ""))


def archived_tree(rev: str, under: Path, name: str = "before") -> Code:
    """The tree of commit ``rev`` under ``under/<sha>``, written once by ``git archive`` (a complete copy has a marker)."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    dest = under / sha
    marker = dest / ".automl-tl-bench-complete"
    if not marker.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", sha], check=True, stdout=archive)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(dest, filter="data")
        marker.write_text(sha + "\n")
    return Code(name, dest, sha)


_PROBE = """
import importlib.metadata, importlib.util, json
import automl_tl
found = {"automl_tl": automl_tl.__file__}
for point in importlib.metadata.entry_points(group="automl_tl"):
    module = point.value.split(":")[0]
    found[module] = importlib.util.find_spec(module).origin
print(json.dumps(found))
"""


def probe_imports(code: Code, cwd: Path) -> dict[str, str]:
    """Where each module that automl-tl and its plugins' entry points name is imported from, in ``code``'s
    environment; exits when one comes from elsewhere than ``code.tree`` (the wrong code would be measured)."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([str(PYTHON), "-c", _PROBE], env=code.env(cwd), cwd=cwd, check=True, capture_output=True,
                          text=True)
    found: dict[str, str] = json.loads(done.stdout)
    stray = {module: origin for module, origin in found.items() if not Path(origin).resolve().is_relative_to(code.tree)}
    if stray:
        raise SystemExit(f"the {code.name} arm would import modules from outside {code.tree}: {stray}")
    return found


# Spins on one core; checks every few million steps that its parent lives, so a harness killed hard leaves no burner.
_BURNER = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(2_000_000):
        pass
"""


@contextmanager
def busy_core(enabled: bool) -> Iterator[None]:
    """While the block runs, a process beside it that keeps one core busy (a pure-Python loop)."""
    if not enabled:
        yield
        return
    burner = subprocess.Popen([str(PYTHON), "-c", _BURNER])
    try:
        yield
    finally:
        burner.terminate()
        burner.wait()


def run_search(code: Code, folder: Path, data: Path, budget: float, seed: int, busy: bool,
               extra: Sequence[str] = ()) -> dict[str, Any]:
    """``automl-tl search DATA --timeout BUDGET`` at the defaults (``extra`` options added); its wall time from
    launch to exit, and its output."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [CLI, "search", str(data), "--study", STUDY, "--timeout", f"{budget:g}", "--seed", str(seed), *extra]
    with (folder / "search.log").open("w") as log, busy_core(busy):
        started_at = datetime.now()
        started = time.perf_counter()
        done = subprocess.run(command, env=code.env(folder), cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - started
    return {"command": " ".join(command[1:]), "returncode": done.returncode, "wall_s": round(wall, 1),
            "excess_s": round(wall - budget, 1), "started_at": started_at.isoformat()}


def load_study(folder: Path) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{folder / 'studies' / f'{STUDY}.db'}")


def trial_kind(trial: Any) -> str:
    """head-only, fine-tune or scratch: the new code's ``kind`` attribute, else what the parameters say (a backbone
    without pretrained weights trains from scratch; nothing unfrozen, or no epoch after the switch, is head-only)."""
    attrs = trial.user_attrs
    if "kind" in attrs:
        return str(attrs["kind"])
    if attrs.get("pretrained") is False:
        return "scratch"
    config = attrs.get("config") or {}
    freeze = trial.params.get("freeze_fraction", config.get("freeze_fraction", 1.0))
    frozen, depth = attrs.get("frozen_blocks"), attrs.get("depth")
    if float(freeze) >= 1.0 or (frozen is not None and depth is not None and frozen >= depth):
        return "head-only"
    switch, epochs = trial.params.get("switch_epoch"), config.get("epochs")
    if switch is not None and epochs is not None and int(switch) >= int(epochs):
        return "head-only"
    return "fine-tune"


def _seconds(trial: Any) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def study_figures(folder: Path, started_at: str) -> dict[str, Any]:
    """What the study recorded: the input size and folds it chose, trials by kind (of those that ran; a trial smart
    start enqueued but never started stays ``waiting``) and by state, the best score, and each trial's predicted and
    real cost (``predicted_seconds`` where the code records it; ``seconds``, else the trial's start-to-end time)."""
    study = load_study(folder)
    began = datetime.fromisoformat(started_at)
    trials = []
    for trial in study.get_trials(deepcopy=False):
        done = trial.datetime_complete
        trials.append({"number": trial.number, "state": trial.state.name.lower(), "kind": trial_kind(trial),
                       "value": trial.value, "backbone": trial.params.get("backbone"),
                       "finished_s": round((done - began).total_seconds(), 1) if done else None,
                       "seconds": trial.user_attrs.get("seconds", _seconds(trial)),
                       "predicted_seconds": trial.user_attrs.get("predicted_seconds"),
                       "stopped_by": trial.user_attrs.get("stopped_by")})
    # A prediction is of a whole trial: pruned trials and trials the deadline cut short ran only part of it.
    ratios = sorted(t["seconds"] / t["predicted_seconds"] for t in trials
                    if t["predicted_seconds"] and t["seconds"] is not None and t["state"] == "complete"
                    and not t["stopped_by"])
    scored = [t for t in trials if t["state"] == "complete" and t["value"] is not None]
    best = max(scored, key=lambda t: t["value"], default=None)
    attrs = study.user_attrs
    settings = attrs.get("search_settings") or {}
    return {"image_size": attrs.get("image_size"), "image_size_reason": attrs.get("image_size_reason"),
            "epochs": attrs.get("epochs"), "cv_folds": settings.get("cv_folds"),
            "trials_by_kind": dict(Counter(t["kind"] for t in trials if t["state"] not in ("waiting", "running"))),
            "trials_by_state": dict(Counter(t["state"] for t in trials)),
            "best_trial": best["number"] if best else None, "best_score": best["value"] if best else None,
            "cost_ratio_real_over_predicted": {"trials": len(ratios),
                                               "median": ratios[len(ratios) // 2] if ratios else None,
                                               "worst": max(ratios, key=lambda r: max(r, 1 / r)) if ratios else None},
            "trials": trials}


class CommandFailed(RuntimeError):
    """An ``automl-tl`` command the harness ran exited non-zero; the message ends with its output."""


def _checked(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-1500:]
        raise CommandFailed(f"automl-tl {command[1]} exited {done.returncode}: {output}")
    return done.stdout


def held_out_accuracy(code: Code, folder: Path, held_out: Path, trial: int | None = None,
                      extra: Sequence[str] = (), name: str | None = None) -> dict[str, Any]:
    """Export a trial of the study (the one ``export`` chooses when ``trial`` is None) as ONNX with ``code`` (with
    ``extra`` export options, into ``exports/name``), and ``automl-tl evaluate`` it on every image of the held-out
    folder."""
    target = folder / "exports" / (name or ("chosen" if trial is None else f"trial_{trial}"))
    export = [CLI, "export", STUDY, "--format", "onnx", "-o", str(target), "--overwrite", *extra]
    env = code.env(folder)
    _checked([*export, *([] if trial is None else ["--trial", str(trial)])], env, folder)
    figures = json.loads(_checked([CLI, "evaluate", str(target), str(held_out), "--split", "all", "--json"], env, folder))
    meta = json.loads((target / "metadata.json").read_text())
    return {"trial": meta.get("trial", trial), "accuracy": float(figures["accuracy"]), "images": figures.get("images")}


def improving_trials(trials: list[dict[str, Any]], most: int) -> list[dict[str, Any]]:
    """The completed trials that raised the best score, in the order they finished; at most ``most`` of them, evenly
    spread, the first and the last always kept."""
    best = float("-inf")
    rises = []
    for trial in sorted((t for t in trials if t["state"] == "complete" and t["value"] is not None
                         and t["finished_s"] is not None), key=lambda t: t["finished_s"]):
        if trial["value"] > best:
            best = trial["value"]
            rises.append(trial)
    if len(rises) > most:
        step = (len(rises) - 1) / max(1, most - 1)
        rises = [rises[round(i * step)] for i in range(most)] if most > 1 else rises[-1:]
    return rises


def anytime_points(code: Code, folder: Path, held_out: Path, figures: dict[str, Any], wall_s: float,
                   max_exports: int) -> list[dict[str, Any]]:
    """The best-by-score model's held-out accuracy against the time its trial finished (``improving_trials``), and
    the model the search chose, at the command's end."""
    chosen = held_out_accuracy(code, folder, held_out)
    points = []
    for trial in improving_trials(figures["trials"], max_exports):
        if trial["number"] == chosen["trial"]:
            judged = chosen
        else:
            judged = held_out_accuracy(code, folder, held_out, trial["number"])
        points.append({"t_s": trial["finished_s"], "trial": trial["number"], "score": trial["value"],
                       "test_accuracy": judged["accuracy"]})
    points.append({"t_s": wall_s, "trial": chosen["trial"], "score": None, "test_accuracy": chosen["accuracy"],
                   "chosen": True, "held_out_images": chosen["images"]})
    return points
