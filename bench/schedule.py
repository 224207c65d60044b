"""Does annealing the fine-tuning rate pay? Smart start's first plan over several seeds, with a
constant fine-tuning rate (the recipe before automl_tl/training/schedule.py) and with the cosine.

    .venv/bin/python bench/schedule.py [DATA] [--seeds 0,1,2,3] [--epochs 4] [--image-size 48]

The plan is the one smart start enqueues first on the sample data: MobileNetV2 cut at 0.75 of
its blocks, a 256-unit head, the top three quarters of the kept blocks fine-tuned from epoch 2.
Four recipes run on the same warm activation cache: a constant rate of lr x 0.3 (the old
plan) and of lr x 1.0, and the cosine at lr x 0.3 and at lr x 1.0 (the plan now). Prints the validation
and test accuracy per seed, their mean and worst, and writes bench/schedule.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision  # noqa: F401  (before anything that may import tensorflow)

import automl_tl_torch.session as torch_session
from automl_tl.cache.store import DiskStore
from automl_tl.data import load_table
from automl_tl.data.sample import ensure_sample
from automl_tl.plugin.manager import load_plugins
from automl_tl.training.engine import run_trial
from automl_tl.tuning.space import config_from_params
from automl_tl_torch.adapter import configure_cpu_threads

PLAN = {"backbone": "mobilenet_v2", "head_units": 256, "head_dropout": 0.2, "lr": 1e-3, "switch_epoch": 1,
        "unfrozen_bn": "train", "cut_fraction": 0.75, "freeze_fraction": 0.25, "augment": "none"}
RECIPES = {  # name: (annealed, finetune_lr_ratio)
    "constant, ratio 0.3": (False, 0.3),
    "constant, ratio 1.0": (False, 1.0),
    "cosine, ratio 0.3": (True, 0.3),
    "cosine, ratio 1.0": (True, 1.0),
}


def constant_rate(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "schedule.json"))
    args = parser.parse_args()
    configure_cpu_threads()
    location = args.data or str(ensure_sample())
    plugins = load_plugins()
    table = load_table(plugins.dataset_for(location).discover(location), args.image_size, show_progress=False)
    spec = plugins.backbone(PLAN["backbone"])
    adapter = plugins.framework(spec.framework)
    adapter.cache = DiskStore(Path(tempfile.mkdtemp(prefix="automl-tl-schedule-")), 2**34)
    cosine = torch_session.anneal
    seeds = [int(seed) for seed in args.seeds.split(",")]
    results: dict[str, object] = {"plan": PLAN, "epochs": args.epochs, "image_size": args.image_size, "recipes": {}}
    for name, (annealed, ratio) in RECIPES.items():
        torch_session.anneal = cosine if annealed else constant_rate
        rows = []
        for seed in seeds:
            config = config_from_params({**PLAN, "finetune_lr_ratio": ratio}, epochs=args.epochs,
                                        image_size=args.image_size, seed=seed)
            outcome = run_trial(adapter, spec, config, table)
            rows.append({"seed": seed, "val": round(outcome.val_accuracy, 4), "test": round(outcome.test_accuracy, 4),
                         "seconds": round(outcome.seconds, 1)})
            print(f"{name:<20} seed {seed}: val {outcome.val_accuracy:.4f} test {outcome.test_accuracy:.4f} "
                  f"{outcome.seconds:5.1f}s", flush=True)
        vals = [row["val"] for row in rows]
        results["recipes"][name] = {"runs": rows, "mean_val": round(float(np.mean(vals)), 4), "worst_val": min(vals),
                                    "mean_test": round(float(np.mean([row["test"] for row in rows])), 4)}
    torch_session.anneal = cosine
    Path(args.out).write_text(json.dumps(results, indent=2))
    print()
    for name, row in results["recipes"].items():
        print(f"{name:<20} mean val {row['mean_val']:.4f}  worst val {row['worst_val']:.4f}  mean test {row['mean_test']:.4f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
