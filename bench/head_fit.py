"""Issue 24, part 1: the heads frozen features allow, and why the smart-start probe disagreed with the head trials.

    .venv/bin/python bench/head_fit.py [--data DIR] [--held-out DIR] [--image-size 224] [--backbones a,b]

Data: by default bench/budget.py's folders (``/tmp/automl_tl_budget/data/search`` and ``held_out``: 647 stamps and
photo-shaped JPEGs to search, 250 held out; run ``bench/budget.py --quick`` or any budget run once to make them).
For each backbone, on its cached last-block features (and a few earlier depths):

1. the probe as smart start measured it before (ridge, the validation split alone) and as it does now (the mean of
   5 folds of train and val, assigned as ``--cv`` assigns them);
2. every fold's accuracy of the same heads, to show how far one small validation split moves;
3. the heads a trial can train, each scored on the same 5 folds: Adam linear and 256-unit heads through the
   engine (12 epochs, as ``--epochs auto`` gives small data), and the L-BFGS logistic head at several L2 strengths;
4. the fitted head refit on train and val, on the held-out folder; multi-depth features; and two backbones'
   features together (concatenated, or their heads' probabilities averaged), the cheapest diverse ensemble.

Prints one JSON line per measurement and a summary; writes them to ``--out`` (bench/head_fit.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torchvision  # noqa: E402,F401  (before anything that may import tensorflow)

from automl_tl.data import load_table  # noqa: E402
from automl_tl.plugin.manager import load_plugins  # noqa: E402
from automl_tl.training.engine import run_trial  # noqa: E402
from automl_tl.training.folds import assign_folds, fold_table, scored_rows  # noqa: E402
from automl_tl.training.linear_head import LinearHead, fit_logistic_head  # noqa: E402
from automl_tl.tuning.smart_start import probe_accuracy, ridge_probe_accuracy  # noqa: E402
from automl_tl.tuning.space import config_from_params  # noqa: E402
from automl_tl.types import ImageTable  # noqa: E402

FOLDS = 5
L2_GRID = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 1.0)
ADAM_HEADS = ({"head_units": 0, "head_dropout": 0.0, "lr": 3e-3}, {"head_units": 256, "head_dropout": 0.3, "lr": 1e-3})


def accuracy(head: LinearHead, features: np.ndarray, labels: np.ndarray) -> float:
    return float(((features @ head.weights + head.bias).argmax(axis=1) == labels).mean())


def probabilities(head: LinearHead, features: np.ndarray) -> np.ndarray:
    logits = features @ head.weights + head.bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def fold_tables(table: ImageTable) -> list[ImageTable]:
    assignment = assign_folds(table.relpaths, table.labels, scored_rows(table), FOLDS)
    return [fold_table(table, assignment, j) for j in range(FOLDS)]


def fitted_fold_scores(features: np.ndarray, folds: list[ImageTable], l2: float) -> list[float]:
    scores = []
    for fold in folds:
        train, val = fold.splits["train"], fold.splits["val"]
        head = fit_logistic_head(features[train], fold.labels[train], fold.num_classes, l2, fold.class_weights())
        scores.append(accuracy(head, features[val], fold.labels[val]))
    return scores


def refit(features: np.ndarray, table: ImageTable, l2: float) -> LinearHead:
    rows = scored_rows(table)
    return fit_logistic_head(features[rows], table.labels[rows], table.num_classes, l2, table.class_weights())


def measure_backbone(name: str, plugins: Any, table: ImageTable, held: ImageTable, folds: list[ImageTable],
                     size: int, emit: Any, fitted_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    spec = plugins.backbone(name)
    adapter = plugins.framework(spec.framework)
    blocks = len(spec.blocks)
    started = time.perf_counter()
    last, held_last = adapter.block_features(spec, table, blocks), adapter.block_features(spec, held, blocks)
    emit({"backbone": name, "what": "features", "seconds": round(time.perf_counter() - started, 1)})
    emit({"backbone": name, "what": "probe", "validation_split_alone": ridge_probe_accuracy(last, table),
          "mean_of_folds": probe_accuracy(last, table),
          "folds": [ridge_probe_accuracy(last, fold) for fold in folds]})
    for head in () if fitted_only else ADAM_HEADS:
        config = config_from_params(dict(backbone=name, freeze_fraction=1.0, finetune_lr_ratio=1.0, switch_epoch=12,
                                         **head), epochs=12, image_size=size)
        scores = [run_trial(adapter, spec, config, fold).val_accuracy for fold in folds]
        emit({"backbone": name, "what": "adam head", **head, "cv": float(np.mean(scores)), "folds": scores})
    for l2 in L2_GRID:
        scores = fitted_fold_scores(last, folds, l2)
        started = time.perf_counter()
        head = refit(last, table, l2)
        emit({"backbone": name, "what": "fitted head", "l2": l2, "cv": float(np.mean(scores)), "folds": scores,
              "held_out": accuracy(head, held_last, held.labels), "refit_seconds": round(time.perf_counter() - started, 3),
              "iterations": head.iterations})
    for depth in () if fitted_only else (blocks - 1, blocks - 2):
        earlier = adapter.block_features(spec, table, depth)
        both, held_both = np.concatenate([last, earlier], 1), np.concatenate([held_last, adapter.block_features(spec, held, depth)], 1)
        emit({"backbone": name, "what": "fitted head, last block + block", "depth": depth, "l2": 1e-2,
              "cv": float(np.mean(fitted_fold_scores(both, folds, 1e-2))),
              "held_out": accuracy(refit(both, table, 1e-2), held_both, held.labels)})
    return last, held_last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/automl_tl_budget/data/search")
    parser.add_argument("--held-out", default="/tmp/automl_tl_budget/data/held_out")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--backbones", default="mobilenet_v2,efficientnet_lite0")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("head_fit.json"))
    parser.add_argument("--fitted-only", action="store_true", help="only the probe and the fitted heads (no Adam "
                        "heads through the engine, no multi-depth): to compare backbones and sizes in a few minutes")
    args = parser.parse_args()
    plugins = load_plugins()
    table = load_table(plugins.dataset_for(args.data).discover(args.data), args.image_size, show_progress=False)
    held = load_table(plugins.dataset_for(args.held_out).discover(args.held_out), args.image_size, show_progress=False)
    folds = fold_tables(table)
    lines: list[dict[str, Any]] = []

    def emit(line: dict[str, Any]) -> None:
        lines.append(line)
        print(json.dumps(line, default=lambda v: round(float(v), 4)), flush=True)

    features = {name: measure_backbone(name, plugins, table, held, folds, args.image_size, emit, args.fitted_only)
                for name in args.backbones.split(",")}
    for first, second in zip(list(features), list(features)[1:], strict=False) if len(features) > 2 else ():
        pair = {first: features[first], second: features[second]}
        together = np.concatenate([f for f, _ in pair.values()], 1)
        held_together = np.concatenate([h for _, h in pair.values()], 1)
        emit({"what": f"fitted head on {first} and {second} features concatenated", "l2": 1e-2,
              "cv": float(np.mean(fitted_fold_scores(together, folds, 1e-2))),
              "held_out": accuracy(refit(together, table, 1e-2), held_together, held.labels)})
    if len(features) > 1:
        together = np.concatenate([f for f, _ in features.values()], 1)
        held_together = np.concatenate([h for _, h in features.values()], 1)
        emit({"what": "fitted head on the backbones' features concatenated", "l2": 1e-2,
              "cv": float(np.mean(fitted_fold_scores(together, folds, 1e-2))),
              "held_out": accuracy(refit(together, table, 1e-2), held_together, held.labels)})
        averaged = sum(probabilities(refit(f, table, 1e-2), h) for f, h in features.values())
        emit({"what": "fitted heads' probabilities averaged", "l2": 1e-2,
              "held_out": float((np.asarray(averaged).argmax(axis=1) == held.labels).mean())})
    args.out.write_text(json.dumps({"data": args.data, "held_out": args.held_out, "images": len(table.labels),
                                    "held_out_images": len(held.labels), "image_size": args.image_size, "lines": lines},
                                   indent=1, default=float))
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
