"""Reference figure: a plain frozen-features linear head, trained and measured exactly as a trial is.

    .venv/bin/python bench/linear_probe.py [DATA] [--epochs 4] [--image-size 48] [--lr 1e-3]

Same data adapter, stable split, image size, engine and epoch budget as `automl-tl search`; only
the recipe is fixed: MobileNetV2 frozen whole, a linear softmax head, no fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import time

import torchvision  # noqa: F401  (before anything that may import tensorflow)

from automl_tl.data import load_table
from automl_tl.data.sample import ensure_sample
from automl_tl.plugin.manager import load_plugins
from automl_tl.training.engine import run_trial
from automl_tl.tuning.space import config_from_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?")
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    location = args.data or str(ensure_sample())
    plugins = load_plugins()
    table = load_table(plugins.dataset_for(location).discover(location), args.image_size, show_progress=False)
    spec = plugins.backbone(args.backbone)
    config = config_from_params(
        dict(backbone=args.backbone, freeze_fraction=1.0, head_units=0, head_dropout=0.0, lr=args.lr,
             finetune_lr_ratio=1.0, switch_epoch=args.epochs), epochs=args.epochs, image_size=args.image_size)
    started = time.perf_counter()
    outcome = run_trial(plugins.framework(spec.framework), spec, config, table)
    print(json.dumps({"recipe": "frozen features + linear head", "backbone": args.backbone, "epochs": args.epochs,
                      "image_size": args.image_size, "lr": args.lr, "val_accuracy": round(outcome.val_accuracy, 4),
                      "test_accuracy": round(outcome.test_accuracy, 4), "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
