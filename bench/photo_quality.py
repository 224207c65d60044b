"""Issue 24's benchmark: held-out accuracy of ``automl-tl search --timeout T`` at the defaults on real colour images,
the code before issue 24 against this tree, over several seeds, and what each new piece adds on its own.

    .venv/bin/python bench/photo_quality.py [--budgets 180,600] [--seeds 0,1,2] [--sets stamps,harder] [--quick]

Data (bench/photo_set.py, bench/small_data_cv.py's stratified held-out split, the same every run):

- ``stamps``: the tuxpaint stamps (13 classes, at their own size, mostly RGBA a few hundred px wide) and 390
  photo-shaped JPEGs drawn from them (300-800 px), as bench/budget.py uses them: 647 images searched, 250 held out.
- ``harder``: stamps only, 20 per class, 40% of each class held out: 12 images per class to search on.

Arms, each a subprocess with a fresh studies folder and a fresh cache, one after the other (bench/budget_arms.py):

- ``before``: ``automl-tl search DATA --timeout T --seed S`` on the code of ``--before-rev`` (ca72c6f, the last commit
  before issue 24), written out by ``git archive``; exported at its defaults.
- ``new``: the same command on this working tree. Its study is exported several ways, each judged on the held-out
  folder: ``default`` (export's defaults), ``single`` (the best trial, ``--flip off``), ``flip`` (``--flip on``) and
  ``ensemble`` (``--ensemble auto``): flip-averaging and ensembles alone.
- ``two_backbones``: this tree limited to the two backbones the code before issue 24 had offline
  (``--backbones mobilenet_v2,efficientnet_lite0``): new minus it is what Lite1 and Lite2 add.

The head kinds and multi-depth features are measured alone, on fixed folds, by bench/head_fit.py; the augmented
views by bench/augmented_views.py (both in ``make bench``). Each seed's figures are written after every arm to
``--out`` (bench/photo_quality.json) and the summary gives, per data set, budget and arm, the mean held-out accuracy,
the spread over seeds (max - min) and the mean wall time.

Time: per seed, (3 arms x 180 s) x 2 sets + 2 arms x 600 s on the stamps, plus exports: about 45 min per seed on
two cores. ``--quick`` checks the script end to end in a few minutes. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/photo_quality.py` from the repository root

from bench.budget import fresh, prepare_data  # noqa: E402
from bench.budget_arms import (  # noqa: E402
    Code,
    CommandFailed,
    archived_tree,
    held_out_accuracy,
    probe_imports,
    run_search,
    study_figures,
    this_tree,
)
from bench.photo_set import stamps_available  # noqa: E402

BENCH = Path(__file__).resolve().parent
ARMS = ("before", "new", "two_backbones")
TWO_BACKBONES = "mobilenet_v2,efficientnet_lite0"
# Export variants of the new arm: the name and the options given to ``automl-tl export``.
NEW_EXPORTS = {"default": [], "single": ["--flip", "off"], "flip": ["--flip", "on"], "ensemble": ["--ensemble", "auto"]}
# (photos, min_images, per_class, held-out share) of each data set; quick: tiny stand-ins.
SETS = {"stamps": (390, 15, None, 0.28), "harder": (0, 15, 20, 0.4)}
QUICK_SETS = {"stamps": (12, 30, 10, 0.3), "harder": (0, 30, 8, 0.4)}
# Which budgets each set runs at (the harder set is small: its 600-s runs add little over 180 s).
SET_BUDGETS = {"stamps": (180.0, 600.0), "harder": (180.0,)}


def run_arm(arm: str, code: Code, folder: Path, data: Path, budget: float, seed: int) -> dict[str, Any]:
    """One search and its held-out figures: the chosen model, and for ``new`` each export variant."""
    extra = ["--backbones", TWO_BACKBONES] if arm == "two_backbones" else []
    run = run_search(code, folder, data / "search", budget, seed, busy=False, extra=extra)
    if run["returncode"] != 0:
        return {**run, "error": (folder / "search.log").read_text(errors="replace")[-2000:]}
    figures = study_figures(folder, run["started_at"])
    result = {**run, **{k: v for k, v in figures.items() if k != "trials"}, "exports": {}}
    if figures["best_trial"] is None:
        return {**result, "error": "no trial completed: nothing to export"}
    variants = NEW_EXPORTS if arm == "new" else {"default": []}
    for name, options in variants.items():
        try:
            judged = held_out_accuracy(code, folder, data / "held_out", extra=options, name=name)
        except CommandFailed as failure:
            result["exports"][name] = {"error": str(failure)[-500:]}
            continue
        result["exports"][name] = {"accuracy": judged["accuracy"], "images": judged["images"], "trial": judged["trial"]}
    default = result["exports"].get("default", {})
    result["test_accuracy"] = default.get("accuracy")
    return result


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per data set, budget, arm and export variant: the seeds, mean held-out accuracy, spread and mean wall time."""
    rows = []
    keys = sorted({(r["set"], r["budget"], r["arm"]) for r in runs}, key=lambda k: (k[0], k[1], ARMS.index(k[2])))
    for data_set, budget, arm in keys:
        done = [r for r in runs if (r["set"], r["budget"], r["arm"]) == (data_set, budget, arm) and "error" not in r]
        for variant in sorted({v for r in done for v in r["exports"]}, key=lambda v: list(NEW_EXPORTS).index(v)):
            scores = [r["exports"][variant]["accuracy"] for r in done if "accuracy" in r["exports"].get(variant, {})]
            if scores:
                rows.append({"set": data_set, "budget": budget, "arm": arm, "export": variant, "seeds": len(scores),
                             "mean": round(mean(scores), 4), "spread": round(max(scores) - min(scores), 4),
                             "scores": scores, "wall_s": round(mean(r["wall_s"] for r in done), 1)})
    return rows


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 24's first "Done when" line, per data set and budget: new's defaults against before's, beside the
    larger of the two arms' spreads over seeds."""
    lines = []
    for data_set, budget in sorted({(r["set"], r["budget"]) for r in rows}):
        found = {r["arm"]: r for r in rows if (r["set"], r["budget"]) == (data_set, budget) and r["export"] == "default"}
        if "new" in found and "before" in found:
            new, before = found["new"], found["before"]
            gain, spread = new["mean"] - before["mean"], max(new["spread"], before["spread"])
            verdict = "beats it by more than the spread" if gain > spread else "does NOT beat it by more than the spread"
            lines.append(f"{data_set} at {budget:g} s over {new['seeds']} seed(s): new {new['mean']:.4f} against before "
                         f"{before['mean']:.4f} ({gain:+.4f}; spread {spread:.4f}): {verdict}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default=None, help="limit every set to these seconds, comma-separated")
    parser.add_argument("--seeds", default="0,1,2", help="search seeds, comma-separated (default %(default)s)")
    parser.add_argument("--sets", default="stamps,harder", help="which of stamps,harder (default %(default)s)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"which of {','.join(ARMS)}")
    parser.add_argument("--before-rev", default="ca72c6f", help="the code before issue 24 (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="tiny budget and data: check the script end to end")
    parser.add_argument("--work", type=Path, default=None, help="data, runs and archived code (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="JSON (default bench/photo_quality.json; quick: --work)")
    args = parser.parse_args()
    work: Path = args.work or Path(tempfile.gettempdir()) / ("automl_tl_photo_quality" + ("_quick" if args.quick else ""))
    out = args.out or (work / "photo_quality.json" if args.quick else BENCH / "photo_quality.json")
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [a for a in args.arms.split(",") if a]
    sets = [s for s in args.sets.split(",") if s]
    if unknown := (set(arms) - set(ARMS)) | (set(sets) - set(SETS)):
        parser.error(f"unknown arms or sets {sorted(unknown)}: arms {', '.join(ARMS)}; sets {', '.join(SETS)}")
    if not stamps_available():
        print("Debian's tuxpaint-stamps-default is not installed (`make stamps` installs it).", file=sys.stderr)
        return 1
    limit = [float(b) for b in args.budgets.split(",")] if args.budgets else None
    codes = {"new": this_tree(), "two_backbones": this_tree()}
    if "before" in arms:
        codes["before"] = archived_tree(args.before_rev, work / "code")
    probes = {name: probe_imports(codes[name], work / "probe") for name in ("new", "before") if name in codes}
    data_info = {}
    for data_set in sets:
        photos, min_images, per_class, share = (QUICK_SETS if args.quick else SETS)[data_set]
        data_info[data_set] = prepare_data(work / data_set, photos, min_images, per_class, share)
    results: dict[str, Any] = {
        "settings": {"seeds": seeds, "arms": arms, "sets": sets, "quick": args.quick, "new_code": codes["new"].commit,
                     "before_code": codes["before"].commit if "before" in codes else None, "data": data_info,
                     "machine": platform.machine(), "cpus": os.cpu_count(), "load_at_start": os.getloadavg()},
        "imports": probes, "runs": []}
    for seed in seeds:
        for data_set in sets:
            budgets = [45.0] if args.quick else (limit or list(SET_BUDGETS[data_set]))
            for budget in budgets:
                for arm in arms:
                    folder = fresh(work / "runs" / data_set / f"seed{seed}" / f"{budget:g}s" / arm)
                    result = run_arm(arm, codes[arm], folder, work / data_set / "data", budget, seed)
                    results["runs"].append({"set": data_set, "arm": arm, "budget": budget, "seed": seed, **result})
                    held = ", ".join(f"{k} {v['accuracy']:.4f}" for k, v in result.get("exports", {}).items()
                                     if "accuracy" in v)
                    print(f"{data_set} {budget:g} s seed {seed} {arm}: wall {result['wall_s']} s, "
                          f"{result.get('error', '').splitlines()[-1] if result.get('error') else held}", flush=True)
                    out.write_text(json.dumps(results, indent=2, default=str))
                    shutil.rmtree(folder / "cache", ignore_errors=True)  # caches are per run: free the disk
    results["summary"] = summary(results["runs"])
    results["verdicts"] = verdicts(results["summary"])
    out.write_text(json.dumps(results, indent=2, default=str))
    for row in results["summary"]:
        print(f"{row['set']:7s} {row['budget']:4g} s {row['arm']:13s} {row['export']:8s} mean {row['mean']:.4f} "
              f"spread {row['spread']:.4f} over {row['seeds']} seed(s), wall {row['wall_s']} s")
    print("\n".join(results["verdicts"]))
    print(f"figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
