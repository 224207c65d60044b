"""Issue 24, part 2: do augmented views pay for their forward passes? Head-only trials with none / hflip / views.

    .venv/bin/python bench/augmented_views.py [--work /tmp/automl_tl_budget] [--image-size 224] [--seeds 3]

Data: bench/budget.py's folders (``WORK/data/search``, 647 stamps and photo-shaped JPEGs, and ``held_out``, 250 the
searches never read; made here the same way when missing). The table is the search folder's train and val splits
with the held-out folder as its test split (bench/small_data_cv.joined_table), at 224 px.

For each backbone (EfficientNet-Lite0, MobileNetV2), on a fresh activation cache:

1. the pooled features of each view are computed once and timed (the original, the mirror, augmented views 1-4):
   the forward passes a first trial pays for a view, and every later trial reads;
2. head-only trials through the engine on the warm cache, for ``augment`` none, hflip, views2 and views4 (two and
   four augmented views beside the original): the Adam head (256 units, dropout 0.3, lr 1e-3, 12 epochs, over
   ``--seeds`` seeds: the seed draws the views per row and epoch) and the fitted L-BFGS head (L2 0.01);
3. a second trial with views2 on the same cache, counting the prefix passes it ran (none: they are reused).

Each arm's "seconds" are the trial's own plus the passes of the views it uses (what a study pays the first time).
Prints one JSON line per measurement; writes them to ``--out`` (bench/augmented_views.json). Figures and the
decision they led to: docs/decisions.md, issue 24 part 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torchvision  # noqa: E402,F401  (before anything that may import tensorflow)

from automl_tl.cache.store import DiskStore  # noqa: E402
from automl_tl.plugin.manager import load_plugins  # noqa: E402
from automl_tl.training.augment import view_ids, view_table  # noqa: E402
from automl_tl.training.engine import run_trial  # noqa: E402
from automl_tl.tuning.space import config_from_params  # noqa: E402
from bench.budget import FULL, prepare_data  # noqa: E402
from bench.small_data_cv import joined_table  # noqa: E402

AUGMENTS = ("none", "hflip", "views2", "views4")
ADAM = {"head_fit": "adam", "head_units": 256, "head_dropout": 0.3, "lr": 1e-3}
FITTED = {"head_fit": "lbfgs", "head_l2": 1e-2}
EPOCHS = 12
HELD_OUT_SHARE = 0.28  # bench/budget.py's default


def view_pass_seconds(adapter: Any, spec: Any, table: Any, view: int) -> float:
    """Seconds computing the pooled features of view ``view`` of ``table`` (nothing of it cached before)."""
    started = time.perf_counter()
    adapter.block_features(spec, view_table(table, view), len(spec.blocks))
    return time.perf_counter() - started


def trial(adapter: Any, spec: Any, table: Any, augment: str, head: dict[str, Any], seed: int, size: int) -> dict[str, Any]:
    config = config_from_params(dict(backbone=spec.name, freeze_fraction=1.0, finetune_lr_ratio=1.0, switch_epoch=EPOCHS,
                                     augment=augment, **head), epochs=EPOCHS, image_size=size)
    config = dataclasses.replace(config, seed=seed)
    started = time.perf_counter()
    outcome = run_trial(adapter, spec, config, table)
    return {"held_out": outcome.test_accuracy, "val": outcome.val_accuracy, "trial_s": time.perf_counter() - started}


def measure(name: str, plugins: Any, table: Any, args: argparse.Namespace, emit: Any) -> None:
    spec = plugins.backbone(name)
    adapter = plugins.framework(spec.framework)
    with tempfile.TemporaryDirectory() as cache_dir:
        adapter.cache = DiskStore(Path(cache_dir), 8 * 2**30, "float16")
        passes = {view: view_pass_seconds(adapter, spec, table, view) for view in view_ids("hflip") + view_ids("views4")[1:]}
        emit({"backbone": name, "what": "pooled-feature pass per view", "rows": len(table.labels),
              "seconds": {str(v): round(s, 1) for v, s in passes.items()}})
        for augment in AUGMENTS:
            paid = sum(passes[v] for v in view_ids(augment))
            for head_name, head in (("adam", ADAM), ("lbfgs", FITTED)):
                seeds = range(args.seeds) if head_name == "adam" else range(1)
                runs = [trial(adapter, spec, table, augment, head, seed, args.image_size) for seed in seeds]
                scores = [r["held_out"] for r in runs]
                emit({"backbone": name, "augment": augment, "head": head_name, "held_out_mean": float(np.mean(scores)),
                      "held_out_spread": float(np.max(scores) - np.min(scores)), "held_out": scores,
                      "val": [r["val"] for r in runs], "trial_s": round(float(np.mean([r["trial_s"] for r in runs])), 2),
                      "passes_s": round(paid, 1), "seconds": round(paid + float(np.mean([r["trial_s"] for r in runs])), 1)})
        before = len(list(adapter.cache.entries()))
        again = trial(adapter, spec, table, "views2", FITTED, 7, args.image_size)
        emit({"backbone": name, "what": "second views2 trial on the same cache", "new_cache_entries":
              len(list(adapter.cache.entries())) - before, "trial_s": round(again["trial_s"], 2)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/automl_tl_budget"))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--backbones", default="efficientnet_lite0,mobilenet_v2")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("augmented_views.json"))
    args = parser.parse_args()
    prepare_data(args.work, FULL.photos, FULL.min_images, FULL.per_class, HELD_OUT_SHARE)
    table = joined_table(args.work / "data", args.image_size)
    plugins = load_plugins()
    lines: list[dict[str, Any]] = []

    def emit(line: dict[str, Any]) -> None:
        lines.append(line)
        print(json.dumps(line, default=lambda v: round(float(v), 4)), flush=True)

    for name in args.backbones.split(","):
        measure(name, plugins, table, args, emit)
    args.out.write_text(json.dumps({"work": str(args.work), "image_size": args.image_size, "train": len(table.splits["train"]),
                                    "val": len(table.splits["val"]), "held_out": len(table.splits["test"]),
                                    "lines": lines}, indent=1, default=float))
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
