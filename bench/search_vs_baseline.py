"""`make bench`: automl-tl search (A) against a plain Optuna loop (B), in one run, on the same data.

    .venv/bin/python bench/search_vs_baseline.py [DATA] [--trials 50] [--b-timeout SEC] [--b-anneal] [--pruners halving,median]

Both use the same search space, epoch budget, image size, data split and sampler seed. A runs
`automl-tl search --trials N` as a user would, with a cold activation cache of its own; B runs
bench/plain_optuna.py, which trains every trial from the images with no cache and no pruning.
If B's trials would take too long, --b-timeout stops it early: the output then says how many
trials B ran and compares per-trial costs too. B fine-tunes at a constant rate, as a user's
Keras-recipe loop does; --b-anneal gives it automl-tl's annealed rate instead. Each extra pruner in --pruners runs A again with
that pruner (cold cache again), which is how the default pruner was chosen.

Prints the figures and writes them to bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import optuna
import torch
import torchvision  # noqa: F401  (before anything that may import tensorflow)
from optuna.trial import TrialState

from automl_tl.cache.activations import normalise_images
from automl_tl.cache.store import DiskStore
from automl_tl.data import load_table
from automl_tl.data.sample import ensure_sample
from automl_tl.plugin.manager import load_plugins
from automl_tl.training.engine import run_trial
from automl_tl.tuning.space import config_from_params
from automl_tl_torch.adapter import configure_cpu_threads
from automl_tl_torch.cache import PrefixFeatures, channels_last
from automl_tl_torch.model import build_block_stack

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
BACKBONES = "mobilenet_v2,small_cnn"
HEAD_TRIAL_REPEATS = 7


def run_child(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float, float]:
    """Run a command; return (start wall clock, wall seconds, peak RSS in MB of that process)."""
    started_clock, started = time.time(), time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{' '.join(command[:3])} ... failed with exit code {child.returncode}; see {log}")
    return started_clock, time.perf_counter() - started, usage.ru_maxrss / 1024


def finished(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=storage)
    done = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return sorted(done, key=lambda t: t.datetime_complete or datetime.max)


def best_of(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return max(complete, key=lambda t: (t.value, -t.number))


def time_to_reach(trials: list[optuna.trial.FrozenTrial], target: float, started_clock: float) -> float | None:
    """Seconds from the process start until a finished trial first had a value >= target."""
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None and trial.value >= target - 1e-12:
            return trial.datetime_complete.timestamp() - started_clock
    return None


def forward_pass_seconds(spec, table) -> float:
    """One forward pass of the training set through the whole backbone (no cache), as B pays each epoch."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    stack = build_block_stack(spec, pretrained=spec.pretrained).eval().to(device, memory_format=torch.channels_last)
    images = normalise_images(table.images, spec.mean, spec.std, channels_first=True)[table.splits["train"]]
    with torch.no_grad():  # one warm-up batch: kernel selection and first-call costs are not the pass
        stack(channels_last(torch.from_numpy(images[:128]).to(device)))
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(images), 128):
            stack(channels_last(torch.from_numpy(images[start : start + 128]).to(device)))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def cached_head_trial_seconds(plugins, spec, table, epochs: int, cache_dir: Path) -> float:
    """A whole head-only trial (phase 1 for every epoch, with validation and test) on cached features:
    the median of HEAD_TRIAL_REPEATS runs after a warm-up."""
    store = DiskStore(cache_dir, 2**34)
    adapter = plugins.framework(spec.framework)
    stack = build_block_stack(spec, pretrained=True).eval().to(adapter.device)
    PrefixFeatures(store, spec.name, table, stack, spec.mean, spec.std, adapter.device).pooled()  # warm
    adapter.cache = store
    config = config_from_params(dict(backbone=spec.name, freeze_fraction=1.0, head_units=0, head_dropout=0.0, lr=3e-3,
                                     finetune_lr_ratio=0.1, switch_epoch=epochs), epochs=epochs, image_size=table.image_size)
    run_trial(adapter, spec, config, table)  # first run pays for imports and one-off set-up
    seconds = []
    for _ in range(HEAD_TRIAL_REPEATS):  # a quarter-second job: the median of a few is what a trial costs
        started = time.perf_counter()
        run_trial(adapter, spec, config, table)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if path.exists() else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--b-trials", type=int, default=None, help="B's trial budget (default: --trials)")
    parser.add_argument("--b-timeout", type=float, default=1800.0, help="stop B after this many seconds (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--b-anneal", action="store_true", help="B anneals its fine-tuning rate as automl-tl does")
    parser.add_argument("--pruners", default="halving", help="A's pruners; the first is A, the others are compared")
    parser.add_argument("--out", default=str(BENCH / "results.json"))
    args = parser.parse_args()
    configure_cpu_threads()
    location = args.data or str(ensure_sample())
    work = Path(tempfile.mkdtemp(prefix="automl-tl-bench-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    common = ["--epochs", str(args.epochs), "--image-size", str(args.image_size)]
    figures: dict[str, object] = {"trials": args.trials, "epochs": args.epochs, "image_size": args.image_size,
                                  "data": location, "cpu_threads": torch.get_num_threads(), "b_anneals": args.b_anneal}

    runs = {}
    for pruner in args.pruners.split(","):
        name = f"a_{pruner}"
        storage = f"sqlite:///{work / (name + '.db')}"
        cache = work / f"cache_{pruner}"
        print(f"[A] automl-tl search --trials {args.trials} --pruner {pruner} (cold cache) ...", flush=True)
        clock, wall, peak = run_child(
            [str(Path(PYTHON).parent / "automl-tl"), "search", location, "--trials", str(args.trials), "--study", name,
             "--storage", storage, "--artifacts", str(work / f"{name}_artifacts"), "--backbones", BACKBONES,
             "--pruner", pruner, *common],
            {**env, "AUTOML_TL_CACHE_DIR": str(cache)}, work / f"{name}.log")
        runs[pruner] = dict(clock=clock, wall=wall, peak=peak, trials=finished(storage, name), cache_mb=dir_mb(cache))
        print(f"    {wall:.0f}s, peak RSS {peak:.0f} MB", flush=True)

    b_trials = args.b_trials or args.trials
    print(f"[B] plain Optuna loop, {b_trials} trials or {args.b_timeout:.0f}s ...", flush=True)
    b_storage = f"sqlite:///{work / 'b.db'}"
    b_clock, b_wall, b_peak = run_child(
        [PYTHON, str(BENCH / "plain_optuna.py"), location, "--storage", b_storage, "--trials", str(b_trials),
         "--timeout", str(args.b_timeout), "--backbones", BACKBONES, *common, *(["--anneal"] if args.b_anneal else [])],
        env, work / "b.log")
    b = finished(b_storage, "plain_optuna")
    b_best = best_of(b)

    plugins = load_plugins()
    table = load_table(plugins.dataset_for(location).discover(location), args.image_size, show_progress=False)
    forward = {name: forward_pass_seconds(plugins.backbone(name), table) for name in BACKBONES.split(",")}
    head_trial = cached_head_trial_seconds(plugins, plugins.backbone("mobilenet_v2"), table, args.epochs, work / "head_cache")

    a = runs[args.pruners.split(",")[0]]
    a_best = best_of(a["trials"])
    a_trials = a["trials"]
    figures.update({
        "a_wall_s": round(a["wall"], 1), "b_wall_s": round(b_wall, 1), "b_trials": len(b),
        "b_over_a_wall": round(b_wall / a["wall"], 2),
        "a_per_trial_s": round(a["wall"] / len(a_trials), 1), "b_per_trial_s": round(b_wall / len(b), 1),
        "a_best_val": round(a_best.value, 4), "b_best_val": round(b_best.value, 4),
        "a_test_acc": round(a_best.user_attrs["test_accuracy"], 4), "b_test_acc": round(b_best.user_attrs["test_accuracy"], 4),
        "a_time_to_b_best_s": _round(time_to_reach(a_trials, b_best.value, a["clock"])),
        "b_time_to_b_best_s": _round(time_to_reach(b, b_best.value, b_clock)),
        "forward_pass_s": round(forward["mobilenet_v2"], 2),
        "forward_pass_s_by_backbone": {k: round(v, 2) for k, v in forward.items()},
        "cached_head_trial_s": round(head_trial, 3),
        "cached_head_trial_share": round(head_trial / forward["mobilenet_v2"], 4),
        "rss_trial1_mb": a_trials[0].user_attrs.get("rss_mb"),
        "rss_trial5_mb": a_trials[4].user_attrs.get("rss_mb") if len(a_trials) >= 5 else None,
        "rss_trial50_mb": a_trials[min(49, len(a_trials) - 1)].user_attrs.get("rss_mb"),
        "a_peak_rss_mb": round(a["peak"], 0), "b_peak_rss_mb": round(b_peak, 0),
        "cache_mb": round(a["cache_mb"], 1),
        "a_pruned": sum(t.state == TrialState.PRUNED for t in a_trials),
        "a_trials": len(a_trials),
    })
    ratio = (figures["a_time_to_b_best_s"] or float("inf")) / max(figures["b_time_to_b_best_s"] or 1e-9, 1e-9)
    figures["a_over_b_time_to_b_best"] = round(ratio, 4)
    figures["pruners"] = {
        pruner: {"wall_s": round(run["wall"], 1), "best_val": round(best_of(run["trials"]).value, 4),
                 "test_acc": round(best_of(run["trials"]).user_attrs["test_accuracy"], 4),
                 "time_to_b_best_s": _round(time_to_reach(run["trials"], b_best.value, run["clock"])),
                 "pruned": sum(t.state == TrialState.PRUNED for t in run["trials"])}
        for pruner, run in runs.items()
    }
    Path(args.out).write_text(json.dumps(figures, indent=2))
    report(figures, b_trials, args.out)
    shutil.rmtree(work, ignore_errors=True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def report(f: dict, b_budget: int, out: str) -> None:
    print()
    print(f"Data {f['data']}, {f['image_size']} px, {f['epochs']} epochs per trial, {f['cpu_threads']} threads")
    print(f"(A) automl-tl search --trials {f['trials']}: {f['a_wall_s']:.0f}s wall ({f['a_per_trial_s']}s/trial, {f['a_pruned']} pruned)")
    short = "" if f["b_trials"] >= b_budget else f"  [stopped by its time limit: {f['b_trials']} of {b_budget} trials]"
    rate = "annealed like A's" if f.get("b_anneals") else "constant, the Keras recipe"
    print(f"(B) plain Optuna, fine-tuning rate {rate}, {f['b_trials']} trials: {f['b_wall_s']:.0f}s wall "
          f"({f['b_per_trial_s']}s/trial){short}")
    print(f"B/A wall time: {f['b_over_a_wall']}x; per trial: {f['b_per_trial_s'] / max(f['a_per_trial_s'], 1e-9):.1f}x")
    print(f"best val: A {f['a_best_val']:.4f}, B {f['b_best_val']:.4f}; "
          f"test acc of the best trial: A {f['a_test_acc']:.4f}, B {f['b_test_acc']:.4f}")
    a_time = "never" if f["a_time_to_b_best_s"] is None else f"{f['a_time_to_b_best_s']}s"
    print(f"time to first reach B's best val ({f['b_best_val']:.4f}): A {a_time}, B {f['b_time_to_b_best_s']}s "
          f"(A/B = {f['a_over_b_time_to_b_best']})")
    fwd = ", ".join(f"{k} {v}s" for k, v in f["forward_pass_s_by_backbone"].items())
    print(f"one forward pass of the training set: {fwd}")
    print(f"cached head-only trial: {f['cached_head_trial_s']}s = {100 * f['cached_head_trial_share']:.2f}% of mobilenet_v2's forward pass")
    print(f"resident memory after trial 1: {f['rss_trial1_mb']} MB, trial 5: {f['rss_trial5_mb']} MB, "
          f"trial {min(50, f['a_trials'])}: {f['rss_trial50_mb']} MB; "
          f"peak RSS A {f['a_peak_rss_mb']:.0f} MB, B {f['b_peak_rss_mb']:.0f} MB; cache {f['cache_mb']} MB")
    if len(f["pruners"]) > 1:
        for pruner, row in f["pruners"].items():
            print(f"  pruner {pruner:<9} wall {row['wall_s']:>6}s  best val {row['best_val']:.4f}  test {row['test_acc']:.4f}  "
                  f"time to B's best {row['time_to_b_best_s']}s  pruned {row['pruned']}")
    for target, met in targets(f).items():
        print(f"target {'met' if met else 'NOT met'}: {target}")
    print(f"written to {out}")


def targets(f: dict) -> dict[str, bool]:
    """Issue 4's targets, each with whether this run met it."""
    return {
        "A reaches B's best val in at most 1/10 of B's time": f["a_over_b_time_to_b_best"] <= 0.1,
        "A's test accuracy is no worse than B's": f["a_test_acc"] >= f["b_test_acc"],
        "a cached head-only trial costs at most 5% of one forward pass": f["cached_head_trial_share"] <= 0.05,
        "resident memory at trial 50 is within 10% of trial 5":
            f["rss_trial5_mb"] is not None and abs(f["rss_trial50_mb"] - f["rss_trial5_mb"]) <= 0.1 * f["rss_trial5_mb"],
    }


if __name__ == "__main__":
    main()
