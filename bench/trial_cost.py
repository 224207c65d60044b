"""Predicted against real trial seconds (issue 23, part B): the cost model checked on real trials at 224 px.

    .venv/bin/python bench/trial_cost.py [--work DIR] [--per-class 20] [--image-size 224] [--epochs 4] [--keras]

1. Copies the tuxpaint stamps (``--per-class`` images of each class) into ``WORK/stamps`` and loads them at
   ``--image-size`` (crop), with a new activation cache and block-timing file in ``WORK/cache``.
2. Profiles MobileNetV2 and EfficientNet-Lite0 (``block_seconds``), and says what that cost.
3. Runs a fixed list of trials of both backbones, head-only and fine-tuning, with a cold cache and then a warm
   one, one with a mirrored view and two under 3-fold cross-validation. Before each, the cost model predicts its
   seconds from the block timings and what the cache holds at that moment (raw: no calibration).
4. Prints predicted and real seconds per trial (the engine's ``outcome.seconds``), and the median and worst
   ratio real / predicted, raw and calibrated online as a search does (each prediction corrected by the
   median ratio of the trials of its backbone and kind that finished before it, see cost_calibration.py);
   writes them to ``WORK/trial_cost.json``. The load average beside each trial says how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torchvision  # noqa: F401  (before anything that may import tensorflow)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/trial_cost.py` from the repository root

from bench.photo_set import stamps_available, write_stamps_folder  # noqa: E402

BACKBONES = ("mobilenet_v2", "efficientnet_lite0")


def trial_plan(epochs: int, keras: bool = False) -> list[tuple[str, str, dict[str, Any], int]]:
    """(label, backbone, changes to the base config, folds), in the order they run: each backbone cold first.
    With ``keras``, Keras' MobileNetV2 too (head-only cold and warm, fine-tuning warm)."""
    head: dict[str, Any] = {"freeze_fraction": 1.0, "switch_epoch": epochs}
    tune: dict[str, Any] = {"freeze_fraction": 0.6, "switch_epoch": max(1, epochs // 2)}
    plan: list[tuple[str, str, dict[str, Any], int]] = []
    for backbone in BACKBONES:
        plan += [
            ("head-only, cold", backbone, head, 0),
            ("head-only, warm", backbone, head, 0),
            ("head-only cut 0.75, warm", backbone, {**head, "cut_fraction": 0.75}, 0),
            ("fine-tune 40%, cold", backbone, tune, 0),
            ("fine-tune 40%, warm", backbone, tune, 0),
            ("head-only, 3-fold CV, warm", backbone, head, 3),
        ]
    plan += [("fine-tune 20% + hflip, cold view", "mobilenet_v2", {"freeze_fraction": 0.8, "switch_epoch": 1,
                                                                   "augment": "hflip"}, 0),
             ("fine-tune 40%, 3-fold CV, warm", "efficientnet_lite0", tune, 3)]
    if keras:
        plan += [("head-only, cold", "MobileNetV2", head, 0), ("head-only, warm", "MobileNetV2", head, 0),
                 ("fine-tune 40%, cold", "MobileNetV2", tune, 0), ("fine-tune 40%, warm", "MobileNetV2", tune, 0)]
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--keras", action="store_true", help="time Keras' MobileNetV2 too")
    args = parser.parse_args(argv)
    if not stamps_available():
        print("The tuxpaint stamps are not installed (apt-get install tuxpaint-stamps-default).", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="trial-cost-"))
    os.environ["AUTOML_TL_CACHE_DIR"] = str(work / "cache")  # cold: a cache of this run's own
    from automl_tl.data import FolderDataset, load_table
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.training.cross_validation import run_trial_scored
    from automl_tl.training.engine import run_trial
    from automl_tl.tuning.block_seconds import BlockSecondsSource
    from automl_tl.tuning.cached_prefixes import AdapterCacheState
    from automl_tl.tuning.cost import DataSizes, TrialCostModel
    from automl_tl.tuning.cost_calibration import CostCalibration
    from automl_tl.types import TrialConfig

    write_stamps_folder(work / "stamps", per_class=args.per_class)
    plugins = load_plugins()
    splits = FolderDataset().discover(str(work / "stamps"))
    rule = plugins.backbone("mobilenet_v2").resize_rule("crop")
    table = load_table(splits, args.image_size, show_progress=False, rule=rule)
    sizes = DataSizes.of(table)
    print(f"{len(table.labels)} images ({sizes.train} train, {sizes.val} val, {sizes.test} test), "
          f"{table.num_classes} classes, {args.image_size} px, {os.cpu_count()} CPUs")
    timings = BlockSecondsSource(plugins.framework)
    profiling: dict[str, float] = {}
    for name in (*BACKBONES, *(("MobileNetV2",) if args.keras else ())):
        before = timings.profiled_s
        seconds = timings(plugins.backbone(name), args.image_size)
        profiling[name] = round(timings.profiled_s - before, 2)
        forward = sum(seconds or ()) * 1000
        print(f"profiled {name}: {profiling[name]:.2f} s ({forward:.1f} ms per image forward, all blocks)")
    calibration = CostCalibration()  # learns from the trials of this run, in order
    model = TrialCostModel(timings, sizes, cache=AdapterCacheState(plugins.framework, table), calibration=calibration)
    base = TrialConfig(backbone="", freeze_fraction=1.0, head_units=128, head_dropout=0.1, lr=1e-3,
                       finetune_lr_ratio=0.1, switch_epoch=args.epochs, epochs=args.epochs, image_size=args.image_size)
    rows: list[dict[str, Any]] = []
    for label, backbone, changes, folds in trial_plan(args.epochs, args.keras):
        spec = plugins.backbone(backbone)
        adapter = plugins.framework(spec.framework)
        config = replace(base, backbone=backbone, **changes)
        predicted = model.predict(spec, config, folds)
        assert predicted is not None, f"no block timings for {backbone}"
        started = time.perf_counter()
        if folds:
            outcome = run_trial_scored(adapter, spec, config, table, folds)
        else:
            outcome = run_trial(adapter, spec, config, table)
        wall = time.perf_counter() - started
        parts = predicted.breakdown
        rows.append({"trial": label, "backbone": backbone, "kind": predicted.kind, "folds": folds,
                     "load": round(os.getloadavg()[0], 1),
                     "predicted_s": round(predicted.raw_seconds, 2), "real_s": round(outcome.seconds, 2),
                     "wall_s": round(wall, 2), "ratio": round(outcome.seconds / predicted.raw_seconds, 3),
                     "calibrated_s": round(predicted.seconds, 2),
                     "calibrated_ratio": round(outcome.seconds / predicted.seconds, 3),
                     "predicted_parts": {name: round(getattr(parts, name), 2) for name in
                                         ("prefix_s", "train_s", "head_s", "predict_s", "overhead_s")}})
        calibration.add(spec.framework, predicted.kind, predicted.raw_seconds, outcome.seconds, backbone)
        row = rows[-1]
        print(f"{backbone:<19} {label:<34} predicted {row['predicted_s']:7.2f} s  real {row['real_s']:7.2f} s  "
              f"ratio {row['ratio']:.2f}  calibrated {row['calibrated_s']:7.2f} s ratio {row['calibrated_ratio']:.2f}  "
              f"load {row['load']:.1f}  (prefix {row['predicted_parts']['prefix_s']:.1f}, "
              f"train {row['predicted_parts']['train_s']:.1f}, predict {row['predicted_parts']['predict_s']:.1f})")
    summary: dict[str, Any] = {}
    for name, chosen in (("all", rows), ("over 5 s", [row for row in rows if row["real_s"] >= 5])):
        for column in ("ratio", "calibrated_ratio"):
            ratios = [row[column] for row in chosen]
            if ratios:
                worst = max(ratios, key=lambda r: max(r, 1 / r))  # the furthest from 1, either way
                summary[f"{name} {column}"] = {"trials": len(ratios), "median": statistics.median(ratios), "worst": worst}
                print(f"{column} real / predicted, {name} ({len(ratios)} trials): median {statistics.median(ratios):.2f}, "
                      f"worst {worst:.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")
    (work / "trial_cost.json").write_text(json.dumps({"profiling_s": profiling, "trials": rows, "ratios": summary},
                                                     indent=2))
    print(f"written to {work / 'trial_cost.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
