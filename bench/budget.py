"""Issue 23's benchmark: what ``automl-tl search --timeout T`` gives, at the defaults, on real colour images at their
own size, against the code before issue 23 and against a fixed two-phase recipe, at the same budgets.

    .venv/bin/python bench/budget.py [--budgets 60,180,600] [--seeds 0] [--busy] [--quick] [--work DIR]

Data: the tuxpaint stamps (13 classes, 507 PNGs; ``make stamps``) and ``--photos`` photo-shaped JPEGs drawn from
them (bench/photo_set.py, 300-800 px, seed 0), in one folder per class; a stratified ``--held-out`` share of each
class (by a hash of the file's name, the same every run) goes to a held-out folder the searches never read.

At each budget and seed, three arms, each a subprocess with a fresh studies folder and a fresh cache (activations
and decoded images), one after the other:

1. ``new``: ``automl-tl search DATA --timeout T --seed S`` with this working tree's code; nothing else is set, so
   the input size, epochs, cross-validation and trial count are the defaults' (the study records the size chosen).
2. ``before``: the same command on the code of ``--before-rev`` (ae5f8b6, the last commit before issue 23), written
   out by ``git archive`` and put first on ``PYTHONPATH``; a probe checks that automl_tl and every module the
   plugins' entry points name really come from there (bench/budget_arms.py).
3. ``fixed``: bench/budget_fixed.py, one configuration by automl-tl's own engine: mobilenet_v2 (the backbone of
   the textbook two-phase recipe, e.g. TensorFlow's transfer-learning tutorial, and of automl-tl's core torch
   plugin), 3 head epochs then up to 10 fine-tuning the top half, at 224 px with centre crop; it stops before an
   epoch that would end past T.

For each, it prints and writes to ``--out`` (bench/budget.json): the wall time against T (and the excess, and
whether it is within the issue's goal, max(2% of T, 10 s)), the trials by kind (head-only, fine-tune, scratch) and
state, the best score, the chosen model's accuracy on the held-out folder (``export --format onnx``, then
``evaluate --split all``), and for code that records them, every trial's predicted and real seconds. The anytime
curve, the best-by-score model's held-out accuracy against wall time (each trial that raised the best score is
exported and evaluated; the fixed recipe is scored after every epoch), is in the JSON and drawn to ``--plot``.
``--busy`` runs a process that keeps one core busy beside each arm.

Time: about 3 x (60 + 180 + 600) s of arms plus exports and data, i.e. 45-50 min per seed on 2 cores (the 600-s
budget alone about 30 min). ``--quick`` checks the script end to end in a few minutes (6 classes, 96 images, 45 s,
output under ``--work``). Run it on a quiet machine: other load shows up as wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/budget.py` from the repository root

from bench.budget_arms import (  # noqa: E402
    PYTHON,
    Code,
    CommandFailed,
    anytime_points,
    archived_tree,
    busy_core,
    probe_imports,
    run_search,
    study_figures,
    this_tree,
)
from bench.photo_set import stamps_available, write_photo_set, write_stamps_folder  # noqa: E402
from bench.small_data_cv import split_held_out  # noqa: E402

BENCH = Path(__file__).resolve().parent
ARMS = ("new", "before", "fixed")


@dataclass(frozen=True)
class Preset:
    """The default budgets and data of a full run or a ``--quick`` one."""

    budgets: str
    photos: int
    min_images: int  # classes with at least this many stamps
    per_class: int | None  # stamps kept per class


FULL = Preset("60,180,600", photos=390, min_images=15, per_class=None)
QUICK = Preset("45", photos=36, min_images=30, per_class=10)  # 6 classes, 16 images each


def goal_margin(budget: float) -> float:
    """Issue 23's goal for the time past ``--timeout``: 2% of it, or 10 s, whichever is larger."""
    return max(0.02 * budget, 10.0)


def prepare_data(work: Path, photos: int, min_images: int, per_class: int | None, held_out: float) -> dict[str, Any]:
    """``work/data/search`` and ``work/data/held_out``, made once per setting (a changed setting makes them anew)."""
    data = work / "data"
    setting = {"photos": photos, "min_images": min_images, "per_class": per_class, "held_out": held_out}
    saved = data / "setting.json"
    if saved.is_file() and json.loads(saved.read_text()).get("setting") == setting:
        return dict(json.loads(saved.read_text()))
    shutil.rmtree(data, ignore_errors=True)
    stamps = write_stamps_folder(data / "all", min_images=min_images, per_class=per_class)
    write_photo_set(data / "all", photos, seed=0, workers=2, min_images=min_images, show_progress=False)
    counts = split_held_out(data / "all", data / "search", data / "held_out", held_out)
    described = {"setting": setting, "classes": len(stamps), "stamps": sum(stamps.values()), "photos": photos, **counts}
    saved.write_text(json.dumps(described))
    return described


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def search_arm(code: Code, folder: Path, data: Path, budget: float, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One search arm: the command, what its study recorded, and the anytime curve on the held-out folder."""
    run = run_search(code, folder, data / "search", budget, seed, args.busy)
    if run["returncode"] != 0:
        tail = (folder / "search.log").read_text(errors="replace")[-2000:]
        return {**run, "error": f"search failed (exit {run['returncode']}): {tail}"}
    figures = study_figures(folder, run["started_at"])
    result = {**run, **{k: v for k, v in figures.items() if k != "trials"}, "test_accuracy": None,
              "held_out_images": None, "chosen_trial": None, "anytime": [], "trials": figures["trials"]}
    if figures["best_trial"] is None:
        return {**result, "note": "no trial completed: nothing to export"}
    try:
        curve = anytime_points(code, folder, data / "held_out", figures, run["wall_s"], args.max_exports)
    except CommandFailed as failure:
        return {**result, "note": str(failure)}
    return {**result, "test_accuracy": curve[-1]["test_accuracy"], "held_out_images": curve[-1]["held_out_images"],
            "chosen_trial": curve[-1]["trial"], "anytime": curve}


def fixed_arm(code: Code, folder: Path, data: Path, budget: float, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """The fixed recipe in a process of its own; its wall time leaves out the per-epoch held-out scoring."""
    out = folder / "fixed.json"
    command = [str(PYTHON), str(BENCH / "budget_fixed.py"), str(data), "--budget", f"{budget:g}", "--out", str(out),
               "--backbone", args.fixed_backbone, "--seed", str(seed)]
    with (folder / "fixed.log").open("w") as log, busy_core(args.busy):
        launched = time.time()
        started = time.perf_counter()
        done = subprocess.run([*command, "--launched", repr(launched)], env=code.env(folder), cwd=folder, stdout=log,
                              stderr=subprocess.STDOUT)
        process_s = time.perf_counter() - started
    if done.returncode != 0:
        return {"returncode": done.returncode, "error": (folder / "fixed.log").read_text(errors="replace")[-2000:]}
    figures = json.loads(out.read_text())
    wall = process_s - figures["held_out_scoring_s"]
    curve = [{"t_s": p["t_s"], "epoch": p["epoch"], "score": p["best_val_accuracy"], "test_accuracy": p["test_accuracy"]}
             for p in figures["points"]]
    return {"command": " ".join(command[1:]), "returncode": 0, "wall_s": round(wall, 1),
            "excess_s": round(wall - budget, 1), "image_size": 224, "trials_by_kind": {"fine-tune": 1},
            "trials_by_state": {"complete": 1}, "best_score": figures["points"][-1]["best_val_accuracy"],
            "test_accuracy": figures["test_accuracy"], "held_out_images": figures["held_out_images"], "anytime": curve,
            "recipe": {k: v for k, v in figures.items() if k != "points"}}


def summary_line(arm: str, result: dict[str, Any], budget: float) -> str:
    if "error" in result:
        return f"  {arm:7s} FAILED: {result['error'].splitlines()[-1] if result['error'] else ''}"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(result["trials_by_kind"].items()))
    states = ", ".join(f"{n} {s}" for s, n in sorted(result["trials_by_state"].items()))
    ratio = result.get("cost_ratio_real_over_predicted") or {}
    cost = (f"; real/predicted cost median {ratio['median']:.2f}, worst {ratio['worst']:.2f} ({ratio['trials']} trials)"
            if ratio.get("trials") else "; no predicted costs recorded" if arm != "fixed" else "")
    within = "within" if result["excess_s"] <= goal_margin(budget) else "PAST"
    score = f"{result['best_score']:.4f}" if result.get("best_score") is not None else "-"
    held = (f"{result['test_accuracy']:.4f} on {result['held_out_images']}" if result["test_accuracy"] is not None
            else f"- ({result.get('note', '')})")
    return (f"  {arm:7s} wall {result['wall_s']:7.1f} s of {budget:g} (excess {result['excess_s']:+.1f} s, {within} the "
            f"{goal_margin(budget):.0f}-s goal) | {result['image_size']} px | trials: {kinds or 'none'}; {states or 'none'} "
            f"| best score {score} | held-out accuracy {held}{cost}")


def detail_lines(result: dict[str, Any]) -> list[str]:
    """The anytime curve (seconds: held-out accuracy) and every trial's predicted and real seconds, where recorded."""
    lines = []
    if result.get("anytime"):
        lines.append("          anytime: " + ", ".join(f"{p['t_s']:.0f} s {p['test_accuracy']:.3f}" for p in result["anytime"]))
    costs = [f"#{t['number']} {t['predicted_seconds']:.1f}->{t['seconds']:.1f}" for t in result.get("trials", [])
             if t.get("predicted_seconds") is not None and t.get("seconds") is not None]
    if costs:
        lines.append("          trial seconds, predicted->real: " + ", ".join(costs))
    return lines


def verdicts(runs: list[dict[str, Any]]) -> list[str]:
    """Issue 23's "Done when" lines that these runs can judge (mean held-out accuracy over seeds)."""
    def mean(arm: str, budget: float, key: str = "test_accuracy") -> float | None:
        values = [r[key] for r in runs if r["arm"] == arm and r["budget"] == budget and r.get(key) is not None]
        return sum(values) / len(values) if values else None

    lines = []
    new_runs = [r for r in runs if r["arm"] == "new"]
    late = [f"{r['budget']:g} s: +{r['excess_s']} s" for r in new_runs if r["excess_s"] > goal_margin(r["budget"])]
    beside = " with a busy core beside it" if any(r.get("busy") for r in new_runs) else ""
    lines.append(f"new code's wall time within max(2% of T, 10 s){beside} at every budget: "
                 + ("not measured" if not new_runs else f"NO ({', '.join(late)})" if late else "yes"))
    for budget in sorted({r["budget"] for r in runs}):
        new, before, fixed = mean("new", budget), mean("before", budget), mean("fixed", budget)
        if None not in (new, before, fixed):
            lines.append(f"{budget:g} s: held-out accuracy new {new:.4f}, before {before:.4f}, fixed {fixed:.4f}")
    if mean("new", 60) is not None and mean("before", 600) is not None:
        lines.append(f"new at 60 s {mean('new', 60):.4f} against before at 600 s {mean('before', 600):.4f}")
    return lines


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """The anytime curves: held-out accuracy of the best-by-score model against wall time, one panel per budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({r["budget"] for r in runs})
    figure, axes = plt.subplots(1, len(budgets), figsize=(5 * len(budgets), 4), squeeze=False)
    colours = {"new": "tab:blue", "before": "tab:orange", "fixed": "tab:green"}
    for axis, budget in zip(axes[0], budgets, strict=True):
        for run in (r for r in runs if r["budget"] == budget and r.get("anytime")):
            points = run["anytime"]
            times = [p["t_s"] for p in points] + [run["wall_s"]]
            accuracies = [p["test_accuracy"] for p in points] + [points[-1]["test_accuracy"]]
            axis.step(times, accuracies, where="post", color=colours[run["arm"]], marker="o", markersize=3,
                      label=f"{run['arm']} (seed {run['seed']})")
        axis.axvline(budget, color="grey", linestyle="--", linewidth=1)
        axis.set(title=f"--timeout {budget:g} s", xlabel="wall time (s)", ylabel="held-out accuracy")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default=None, help="seconds, comma-separated (default 60,180,600; quick 45)")
    parser.add_argument("--seeds", default="0", help="search seeds, comma-separated (default %(default)s)")
    parser.add_argument("--arms", default=",".join(ARMS), help="which of new,before,fixed to run")
    parser.add_argument("--before-rev", default="ae5f8b6", help="the code before issue 23 (default %(default)s)")
    parser.add_argument("--new-rev", default=None,
                        help="run the new and fixed arms on this commit, archived (default: the working tree as it is)")
    parser.add_argument("--busy", action="store_true", help="keep one core busy beside each arm")
    parser.add_argument("--quick", action="store_true", help="tiny budget and data: check the script end to end")
    parser.add_argument("--photos", type=int, default=None, help="photo-shaped JPEGs added to the stamps (default 390)")
    parser.add_argument("--held-out", type=float, default=0.28, help="share of each class kept from the searches")
    parser.add_argument("--max-exports", type=int, default=8, help="most trials exported per arm for the curve")
    parser.add_argument("--fixed-backbone", default="mobilenet_v2")
    parser.add_argument("--work", type=Path, default=None, help="data, runs and the archived code (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="JSON (default bench/budget.json; quick: under --work)")
    parser.add_argument("--plot", type=Path, default=None, help="PNG (default bench/budget_anytime.png; quick: --work)")
    args = parser.parse_args()
    preset = QUICK if args.quick else FULL
    work: Path = args.work or Path(tempfile.gettempdir()) / ("automl_tl_budget_quick" if args.quick else "automl_tl_budget")
    out = args.out or (work / "budget.json" if args.quick else BENCH / "budget.json")
    plot_path = args.plot or (work / "budget_anytime.png" if args.quick else BENCH / "budget_anytime.png")
    budgets = [float(b) for b in (args.budgets or preset.budgets).split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [a for a in args.arms.split(",") if a]
    if unknown := set(arms) - set(ARMS):
        parser.error(f"unknown arms {sorted(unknown)}: choose from {', '.join(ARMS)}")
    if not stamps_available():
        print("Debian's tuxpaint-stamps-default is not installed (`make stamps` installs it).", file=sys.stderr)
        return 1

    work.mkdir(parents=True, exist_ok=True)
    photos = args.photos if args.photos is not None else preset.photos
    data_info = prepare_data(work, photos, preset.min_images, preset.per_class, args.held_out)
    new_code = archived_tree(args.new_rev, work / "code", name="new") if args.new_rev else this_tree()
    codes = {"new": new_code, "fixed": new_code}
    if "before" in arms:
        codes["before"] = archived_tree(args.before_rev, work / "code")
    probes = {name: probe_imports(codes[name], work / "probe") for name in ("new", "before") if name in arms}
    results: dict[str, Any] = {
        "settings": {"budgets": budgets, "seeds": seeds, "arms": arms, "busy": args.busy, "quick": args.quick,
                     "new_code": codes["new"].commit, "before_code": codes["before"].commit if "before" in codes else None,
                     "fixed_backbone": args.fixed_backbone, "data": data_info, "machine": platform.machine(),
                     "cpus": os.cpu_count(), "load_at_start": os.getloadavg()},
        "imports": probes, "runs": []}
    print(f"data: {data_info['classes']} classes, {data_info['search']} images to search, {data_info['held_out']} "
          f"held out; code: new {codes['new'].commit}, before {results['settings']['before_code']}")
    for seed in seeds:
        for budget in budgets:
            print(f"--timeout {budget:g} s, seed {seed}:", flush=True)
            for arm in arms:
                folder = fresh(work / "runs" / f"seed{seed}" / f"{budget:g}s" / arm)
                runner = fixed_arm if arm == "fixed" else search_arm
                result = runner(codes[arm], folder, work / "data", budget, seed, args)
                results["runs"].append({"arm": arm, "budget": budget, "seed": seed, "busy": args.busy, **result})
                print("\n".join([summary_line(arm, result, budget), *detail_lines(result)]), flush=True)
                out.write_text(json.dumps(results, indent=2, default=str))  # after each arm: a stopped run keeps its figures
    results["verdicts"] = verdicts([r for r in results["runs"] if "error" not in r])
    out.write_text(json.dumps(results, indent=2, default=str))
    plot([r for r in results["runs"] if "error" not in r], plot_path)
    print("\n".join(results["verdicts"]))
    print(f"figures in {out}, anytime curve in {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
