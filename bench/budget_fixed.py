"""The fixed two-phase recipe of bench/budget.py, run in a process of its own at a time budget:

    .venv/bin/python bench/budget_fixed.py DATA --budget SEC --out FILE.json [--backbone mobilenet_v2] [--seed 0]

One configuration trained by automl-tl's own engine (``automl_tl.training.engine.run_trial``) on ``DATA/search``'s
training split, its epoch chosen on the validation split: 3 head epochs, then up to 10 epochs fine-tuning the top
half of the blocks, at 224 px with the study's resize rule (centre crop). The images go through the decoded-image
store and the activation cache of ``$AUTOML_TL_CACHE_DIR``, as a search's do, so decoding and caching are paid here
too. The settings are smart start's (a 256-unit head, dropout 0.2, rate 1e-3; fine-tuning after a late switch at a
tenth of that rate, annealed over the planned fine-tuning epochs).

The budget is kept as a user running the recipe by hand would keep it: the head epochs and the first fine-tuning
epoch always run; after that, an epoch that would end past the budget (judged by the last epoch's seconds) is not
started. The kept model is the best epoch by validation accuracy, as ``run_trial`` keeps it. After every epoch the
model is also scored on ``DATA/held_out`` (the table's test split) for the anytime curve; those seconds are counted
apart and left out of the recipe's time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torchvision  # noqa: F401  (before anything that may import tensorflow)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/budget_fixed.py` from the repository root

HEAD_EPOCHS = 3
FINETUNE_EPOCHS = 10
IMAGE_SIZE = 224


class HeldOutScoring:
    """A trial session that also predicts the held-out (test) split each time the engine predicts validation,
    and counts the seconds that costs."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.test_probabilities: np.ndarray | None = None
        self.seconds = 0.0

    def predict_split(self, split: str) -> np.ndarray:
        probabilities: np.ndarray = self.session.predict_split(split)
        if split == "val":
            started = time.perf_counter()
            self.test_probabilities = self.session.predict_split("test")
            self.seconds += time.perf_counter() - started
        return probabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


class ScoringAdapter:
    """The framework adapter, its sessions wrapped in ``HeldOutScoring``; the last one started is ``session``."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.session: HeldOutScoring | None = None

    def start_trial(self, spec: Any, config: Any, data: Any) -> HeldOutScoring:
        self.session = HeldOutScoring(self.adapter.start_trial(spec, config, data))
        return self.session

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapter, name)


def recipe(backbone: str, seed: int, finetune_epochs: int) -> Any:
    """The two-phase configuration: smart start's head, the top half of the blocks fine-tuned after the head epochs."""
    from automl_tl.types import TrialConfig

    return TrialConfig(backbone=backbone, freeze_fraction=0.5, head_units=256, head_dropout=0.2, lr=1e-3,
                       finetune_lr_ratio=0.1, switch_epoch=HEAD_EPOCHS, epochs=HEAD_EPOCHS + finetune_epochs,
                       image_size=IMAGE_SIZE, cut_fraction=1.0, augment="none", seed=seed)


def run(data: Path, budget: float, backbone: str, seed: int, finetune_epochs: int, launched: float) -> dict[str, Any]:
    """Train the recipe within ``budget`` seconds of ``launched`` (a ``time.time()``); its figures and curve."""
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.runtime.memory import tune_allocator
    from automl_tl.training.engine import PruneTrial, run_trial
    from automl_tl.training.metrics import accuracy
    from automl_tl.types import Phase
    from bench.small_data_cv import joined_table

    tune_allocator()  # as the CLI's own processes do
    plugins = load_plugins()
    spec = plugins.backbone(backbone)
    adapter = ScoringAdapter(plugins.framework(spec.framework))
    config = recipe(backbone, seed, finetune_epochs)
    table = joined_table(data, IMAGE_SIZE)  # search's train and val splits; held_out as the test split
    held_labels = table.labels[table.splits["test"]]
    ready_s = time.time() - launched
    points: list[dict[str, Any]] = []
    best: dict[str, Any] = {"best_val_accuracy": -1.0}
    scored_s = 0.0  # held-out scoring seconds up to the last epoch

    def recipe_seconds() -> float:
        return time.time() - launched - (adapter.session.seconds if adapter.session else 0.0)

    def on_epoch(result: Any) -> None:
        nonlocal scored_s
        session = adapter.session
        assert session is not None and session.test_probabilities is not None
        if result.val_accuracy > best["best_val_accuracy"]:
            best.update(best_epoch=result.epoch, best_val_accuracy=result.val_accuracy,
                        test_accuracy=accuracy(session.test_probabilities, held_labels))
        points.append({"epoch": result.epoch, "phase": result.phase.value, "t_s": round(recipe_seconds(), 1),
                       "epoch_s": round(result.seconds - (session.seconds - scored_s), 1),
                       "val_accuracy": result.val_accuracy, **best})
        scored_s = session.seconds

    def past_deadline(result: Any) -> bool:
        """After the first fine-tuning epoch: whether another epoch like the last would end past the budget."""
        more = result.epoch + 1 < config.epochs
        return more and result.phase is Phase.FINETUNE and recipe_seconds() + points[-1]["epoch_s"] > budget

    stopped = False
    try:
        run_trial(adapter, spec, config, table, on_epoch=on_epoch, should_prune=past_deadline)
    except PruneTrial:
        stopped = True
    wall = time.time() - launched
    return {"backbone": backbone, "config": asdict(config), "head_epochs": HEAD_EPOCHS,
            "finetune_epochs_planned": finetune_epochs, "epochs_run": len(points),
            "stopped_by_deadline": stopped, "data_ready_s": round(ready_s, 1), "held_out_scoring_s": round(scored_s, 1),
            "recipe_s": round(wall - scored_s, 1), "held_out_images": len(held_labels),
            "test_accuracy": best.get("test_accuracy"), "best_epoch": best.get("best_epoch"), "points": points}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a folder with search/ and held_out/ (one sub-folder per class each)")
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--finetune-epochs", type=int, default=FINETUNE_EPOCHS)
    parser.add_argument("--launched", type=float, default=None, help="time.time() when the harness launched this")
    args = parser.parse_args()
    figures = run(args.data, args.budget, args.backbone, args.seed, args.finetune_epochs, args.launched or time.time())
    args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
