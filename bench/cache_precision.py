"""Does storing cached activations as float16 cost accuracy? The same trials, float16 against float32.

    .venv/bin/python bench/cache_precision.py [DATA] [--epochs 4] [--image-size 48]

Runs a head-only trial and two fine-tuning trials (from the middle and from near the bottom of
MobileNetV2) with the same seed on a float32 cache and on a float16 cache, and prints the
validation and test accuracy of each, the largest difference in the pooled features, and the
size of each cache. Writes bench/precision.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision  # noqa: F401  (before anything that may import tensorflow)

from automl_tl.cache.store import DiskStore
from automl_tl.data import load_table
from automl_tl.data.sample import ensure_sample
from automl_tl.plugin.manager import load_plugins
from automl_tl.training.engine import run_trial
from automl_tl.tuning.space import config_from_params
from automl_tl_torch.adapter import configure_cpu_threads
from automl_tl_torch.cache import PrefixFeatures
from automl_tl_torch.model import build_block_stack

TRIALS = {
    "head only": dict(freeze_fraction=1.0, switch_epoch=99),
    "fine-tune top half": dict(freeze_fraction=0.5, switch_epoch=1),
    "fine-tune most": dict(freeze_fraction=0.2, switch_epoch=1, unfrozen_bn="frozen"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "precision.json"))
    args = parser.parse_args()
    configure_cpu_threads()
    location = args.data or str(ensure_sample())
    plugins = load_plugins()
    table = load_table(plugins.dataset_for(location).discover(location), args.image_size, show_progress=False)
    spec = plugins.backbone("mobilenet_v2")
    adapter = plugins.framework("torch")
    work = Path(tempfile.mkdtemp(prefix="automl-tl-precision-"))
    stores = {dtype: DiskStore(work / dtype, 2**34, dtype) for dtype in ("float32", "float16")}
    stack = build_block_stack(spec, pretrained=True).eval()
    pooled = {dtype: np.asarray(PrefixFeatures(store, spec.name, table, stack, spec.mean, spec.std,
                                               torch.device("cpu")).pooled(), np.float32)
              for dtype, store in stores.items()}
    scale = float(np.abs(pooled["float32"]).max())
    results: dict[str, object] = {"max_abs_pooled_diff": float(np.abs(pooled["float16"] - pooled["float32"]).max()),
                                  "pooled_max_abs_value": scale, "trials": {}}
    for name, changes in TRIALS.items():
        params = {"backbone": spec.name, "head_units": 256, "head_dropout": 0.2, "lr": 1e-3, "finetune_lr_ratio": 0.3,
                  "unfrozen_bn": "train", **changes}
        params["switch_epoch"] = min(params["switch_epoch"], args.epochs)
        config = config_from_params(params, epochs=args.epochs, image_size=args.image_size, seed=0)
        row = {}
        for dtype, store in stores.items():
            adapter.cache = store
            started = time.perf_counter()
            outcome = run_trial(adapter, spec, config, table)
            row[dtype] = {"val": round(outcome.val_accuracy, 4), "test": round(outcome.test_accuracy, 4),
                          "seconds": round(time.perf_counter() - started, 1)}
        results["trials"][name] = row
    results["cache_mb"] = {dtype: round(store.bytes_used() / 2**20, 1) for dtype, store in stores.items()}
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"pooled features: max |float16 - float32| = {results['max_abs_pooled_diff']:.2e} (values up to {scale:.1f})")
    for name, row in results["trials"].items():
        print(f"{name:<20} float32 val {row['float32']['val']:.4f} test {row['float32']['test']:.4f} {row['float32']['seconds']:>6}s | "
              f"float16 val {row['float16']['val']:.4f} test {row['float16']['test']:.4f} {row['float16']['seconds']:>6}s")
    print(f"cache size: float32 {results['cache_mb']['float32']} MB, float16 {results['cache_mb']['float16']} MB")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
