"""Do per-block fine-tuning rates pay? One fine-tuning plan, the same seeds and the same budget, with the
rate decaying from the top trained block down (``block_lr_decay`` < 1) against the single rate (1.0).

    .venv/bin/python bench/block_lr.py [--data sample,stamps] [--decays 1.0,0.8,0.6] [--seeds 0,1]
                                       [--epochs 4] [--per-class 60] [--quick]

The plan is smart start's "large and similar" one, on MobileNetV2 (PyTorch): cut at 0.75 of its blocks (14
of 19), the top three quarters of them (10 blocks) fine-tuned from epoch 2 at the head's rate, annealed to
zero; only ``block_lr_decay`` changes between runs, so at 0.6 the lowest trained block learns at 0.6 ** 9 =
1 % of the top one's rate. Two data sets: the bundled sample (animal_mnist at 48 px, ``--per-class`` images
of each class in each split, so that a trial takes seconds) and Debian's tuxpaint stamps (real colour
images, every class of 15 or more, at 96 px), skipped when not installed. Every figure is a ratio
against the single rate measured in the same run, on the same seeds: the mean validation and test
accuracy, and the mean of the per-seed ratios. With the defaults (12 trials) about 7 minutes of CPU time:
some 4 minutes on 2 quiet cores (three seeds took 10.6 CPU minutes). Writes bench/block_lr.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torchvision  # noqa: F401  (before anything that may import tensorflow)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/block_lr.py` from the repository root

from automl_tl.cache.store import DiskStore  # noqa: E402
from automl_tl.data import FolderDataset, load_table  # noqa: E402
from automl_tl.data.sample import ensure_sample  # noqa: E402
from automl_tl.plugin.manager import load_plugins  # noqa: E402
from automl_tl.training.engine import run_trial  # noqa: E402
from automl_tl.tuning.space import config_from_params  # noqa: E402
from automl_tl.types import ImageTable  # noqa: E402
from automl_tl_torch.adapter import configure_cpu_threads  # noqa: E402
from bench.photo_set import stamps_available, write_stamps_folder  # noqa: E402

PLAN = {"backbone": "mobilenet_v2", "head_units": 256, "head_dropout": 0.2, "lr": 1e-3, "finetune_lr_ratio": 1.0,
        "switch_epoch": 1, "unfrozen_bn": "train", "cut_fraction": 0.75, "freeze_fraction": 0.25, "augment": "none"}
IMAGE_SIZE = {"sample": 48, "stamps": 96}


def smaller_table(table: ImageTable, per_class: int) -> ImageTable:
    """The first ``per_class`` images of each class in each split, as a table of their own (its own
    content hashes, so its activations are cached apart from the whole table's)."""
    keep: dict[str, list[int]] = {}
    for split, indices in table.splits.items():
        keep[split] = [int(i) for c in range(table.num_classes) for i in indices[table.labels[indices] == c][:per_class]]
    rows = np.array(sorted(i for chosen in keep.values() for i in chosen))
    position = {int(row): k for k, row in enumerate(rows)}
    return ImageTable(
        images=np.asarray(table.images[rows]), labels=table.labels[rows], class_names=table.class_names,
        relpaths=tuple(table.relpaths[i] for i in rows),
        splits={split: np.array(sorted(position[i] for i in chosen)) for split, chosen in keep.items()},
        manifest_hash=f"{table.manifest_hash}-first-{per_class}",
        content_hashes=tuple(table.content_hashes[i] for i in rows) if table.content_hashes else (),
    )


def data_sets(names: list[str], per_class: int, plugins: Any) -> dict[str, ImageTable]:
    """The tables the plan runs on, by name; the stamps only where Debian's package is installed."""
    tables: dict[str, ImageTable] = {}
    for name in names:
        if name == "sample":
            location = str(ensure_sample())
            whole = load_table(plugins.dataset_for(location).discover(location), IMAGE_SIZE[name], show_progress=False)
            tables[name] = smaller_table(whole, per_class)
        elif name == "stamps" and stamps_available():
            folder = Path(tempfile.mkdtemp(prefix="automl-tl-block-lr-stamps-"))
            write_stamps_folder(folder)
            tables[name] = load_table(FolderDataset().discover(str(folder)), IMAGE_SIZE[name], show_progress=False)
        elif name == "stamps":
            print("tuxpaint-stamps-default is not installed: the stamps are skipped (`make stamps` installs them)")
        else:
            raise SystemExit(f"unknown data set {name!r}: sample or stamps")
    return tables


def summary(runs: dict[float, list[dict[str, float]]]) -> dict[str, Any]:
    """Per decay: mean and worst accuracies, and each as a ratio against the single rate (decay 1.0)."""
    single = runs[1.0]
    mean = {key: float(np.mean([row[key] for row in single])) for key in ("val", "test")}
    rows: dict[str, Any] = {}
    for decay, results in runs.items():
        row: dict[str, Any] = {"runs": results}
        for key in ("val", "test"):
            values = [r[key] for r in results]
            row[f"mean_{key}"] = round(float(np.mean(values)), 4)
            row[f"worst_{key}"] = round(min(values), 4)
            row[f"{key}_ratio"] = round(float(np.mean(values)) / max(mean[key], 1e-9), 4)
            row[f"{key}_ratio_per_seed"] = round(float(np.mean([r[key] / max(s[key], 1e-9)
                                                                for r, s in zip(results, single, strict=True)])), 4)
        rows[f"{decay:g}"] = row
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample,stamps")
    parser.add_argument("--decays", default="1.0,0.8,0.6")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=60, help="images of each class in each split of the sample")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "block_lr.json"))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.per_class = "0", 2, 10
    decays = sorted({1.0, *(float(d) for d in args.decays.split(","))}, reverse=True)  # the single rate is the baseline
    seeds = [int(seed) for seed in args.seeds.split(",")]
    configure_cpu_threads()
    plugins = load_plugins()
    spec = plugins.backbone(str(PLAN["backbone"]))
    adapter = plugins.framework(spec.framework)
    adapter.cache = DiskStore(Path(tempfile.mkdtemp(prefix="automl-tl-block-lr-")), 2**34)
    started = time.monotonic()
    results: dict[str, Any] = {"plan": PLAN, "epochs": args.epochs, "seeds": seeds, "data": {}}
    for name, table in data_sets(args.data.split(","), args.per_class, plugins).items():
        runs: dict[float, list[dict[str, float]]] = {decay: [] for decay in decays}
        for seed in seeds:  # decays interleaved per seed: a slower moment of the machine hits them alike
            for decay in decays:
                config = config_from_params({**PLAN, "block_lr_decay": decay}, epochs=args.epochs,
                                            image_size=table.image_size, seed=seed)
                outcome = run_trial(adapter, spec, config, table)
                runs[decay].append({"seed": seed, "val": round(outcome.val_accuracy, 4),
                                    "test": round(outcome.test_accuracy, 4), "seconds": round(outcome.seconds, 1)})
                print(f"{name:<7} decay {decay:<4g} seed {seed}: val {outcome.val_accuracy:.4f} "
                      f"test {outcome.test_accuracy:.4f} {outcome.seconds:5.1f}s", flush=True)
        splits = {split: len(indices) for split, indices in table.splits.items()}
        results["data"][name] = {"image_size": table.image_size, "classes": table.num_classes, "splits": splits,
                                 "decays": summary(runs)}
    results["seconds"] = round(time.monotonic() - started, 1)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print()
    for name, row in results["data"].items():
        print(f"{name} ({row['classes']} classes, {row['splits']}, {row['image_size']} px):")
        for decay, figures in row["decays"].items():
            print(f"  decay {decay:<4} val {figures['mean_val']:.4f} (x{figures['val_ratio']:.3f}, worst "
                  f"{figures['worst_val']:.4f})  test {figures['mean_test']:.4f} (x{figures['test_ratio']:.3f})")
    print(f"{results['seconds']:.0f} s in all; written to {args.out}")


if __name__ == "__main__":
    main()
