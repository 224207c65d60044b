"""Cross-validation where it decides something (issue 23, part C): what successive halving across folds saves on
fine-tuning trials, and whether the selection stays as honest as full cross-validation.

    .venv/bin/python bench/cv_schedule.py [--work DIR] [--head 16] [--finetune 16] [--image-size 64] [--epochs 6]

1. The tuxpaint stamps (13 classes, about 500 images) are split as ``bench/small_data_cv.py`` splits them: 35% of
   each class into a held-out folder no model trains or is chosen on (the test split of one joined table).
2. A pool of random recipes, ``--head`` head-only and ``--finetune`` fine-tuning ones (EfficientNet-Lite0 or
   MobileNetV2, cut, head, dropout, rates, BatchNorm mode, hflip; the fine-tuning ones unfreeze the top 10-30% of
   the kept blocks after half the epochs), is scored three ways on the same images: on the validation split
   (``--cv off``: one training), by 5-fold cross-validation and a refit (today's ``--cv 5``: K + 1 trainings), and
   fold 0 alone (its best accuracy, what ``after_fold`` sees). Every model's held-out accuracy is measured.
3. The schedule (``automl_tl.tuning.fold_halving.runs_other_folds``, the rule the search runs) is replayed on
   many random orders of sub-pools of 10, 20 and all recipes: in that order, a trial's fold-0 accuracy is
   compared with the earlier trials'; a fine-tuning trial below the top third (with 4 peers or more) is pruned
   after fold 0 and never ranked, every other trial runs all folds and the refit. For each of the three ways:
   the chosen recipe's score, its held-out accuracy, the gap, how often it is the pool's best held out, and the
   seconds the fine-tuning trials cost (folds + refit; fold 0 alone when pruned).

The same replay on the fine-tuning recipes alone (``chosen_among_finetunes``) asks whether fold 0 keeps the best
of them when no head-only trial is in the way. Prints the figures and writes them to WORK/cv_schedule.json (the
load average before and after is recorded); ``--reuse`` replays the recipes a run already scored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torchvision  # noqa: F401  (before anything that may import tensorflow)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/cv_schedule.py` from the repository root

from bench.photo_set import stamp_classes, stamps_available, write_stamps_folder  # noqa: E402
from bench.small_data_cv import joined_table, spearman, split_held_out  # noqa: E402

CV_FOLDS = 5
BACKBONES = ["efficientnet_lite0", "mobilenet_v2"]


def recipes(head: int, finetune: int, epochs: int, image_size: int, seed: int) -> list[Any]:
    """``head`` head-only and ``finetune`` fine-tuning recipes drawn from the search space's ranges, interleaved."""
    from automl_tl.tuning.space import HEAD_UNITS
    from automl_tl.types import TrialConfig

    rng = np.random.default_rng(seed)

    def draw(tunes: bool) -> TrialConfig:
        return TrialConfig(
            backbone=str(rng.choice(BACKBONES)), freeze_fraction=float(rng.choice([0.7, 0.8, 0.9])) if tunes else 1.0,
            head_units=int(rng.choice(HEAD_UNITS)), head_dropout=round(float(rng.integers(0, 11)) * 0.05, 2),
            lr=float(np.exp(rng.uniform(np.log(3e-4), np.log(3e-2)))),
            finetune_lr_ratio=float(np.exp(rng.uniform(np.log(0.03), np.log(1.0)))) if tunes else 1.0,
            switch_epoch=epochs // 2 if tunes else epochs, epochs=epochs, image_size=image_size,
            unfrozen_bn=str(rng.choice(["train", "frozen"])), cut_fraction=float(rng.choice([0.75, 0.875, 1.0])),
            augment=str(rng.choice(["none", "hflip"])), seed=seed)

    kinds = [True] * finetune + [False] * head
    rng.shuffle(kinds)
    return [draw(bool(tunes)) for tunes in kinds]


def score_pool(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each recipe scored on the validation split and by K-fold CV with a refit, with every model's held-out
    accuracy and the seconds of each fold and of the refit."""
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.training.cross_validation import run_trial_scored
    from automl_tl.training.engine import run_trial
    from automl_tl.tuning.trial_runner import trial_kind

    os.environ["AUTOML_TL_CACHE_DIR"] = str(work / "cache")
    plugins = load_plugins()
    table = joined_table(work, args.image_size)
    rows = []
    for number, config in enumerate(recipes(args.head, args.finetune, args.epochs, args.image_size, args.seed)):
        spec = plugins.backbone(config.backbone)
        adapter = plugins.framework(spec.framework)
        single = run_trial(adapter, spec, config, table)  # also fills the activation cache the folds read
        with tempfile.TemporaryDirectory() as scratch:
            scored = run_trial_scored(adapter, spec, config, table, CV_FOLDS, seed=args.seed, save_to=Path(scratch))
        fold_0_best = max(result.val_accuracy for result in scored.history)
        rows.append({"recipe": number, "kind": trial_kind(spec, config), "backbone": config.backbone,
                     "val": single.val_accuracy, "val_held_out": single.test_accuracy, "val_seconds": single.seconds,
                     "cv": scored.val_accuracy, "refit_held_out": scored.test_accuracy, "fold_0": fold_0_best,
                     "fold_seconds": scored.scoring["cv_fold_seconds"],
                     "refit_seconds": scored.scoring["cv_refit_seconds"]})
        print(f"recipe {number:>2} {rows[-1]['kind']:<9} val {single.val_accuracy:.3f} cv {scored.val_accuracy:.3f} "
              f"fold 0 {fold_0_best:.3f} held out {scored.test_accuracy:.3f}  cv {sum(rows[-1]['fold_seconds']):.1f}"
              f"+{rows[-1]['refit_seconds']:.1f} s", flush=True)
    return rows


def cv_seconds(row: dict[str, Any]) -> float:
    return float(sum(row["fold_seconds"]) + row["refit_seconds"])


def replay_schedule(ordered: list[dict[str, Any]]) -> list[bool]:
    """Which trials of ``ordered`` (in the order a search would run them) run all folds under fold halving."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from automl_tl.study_record import FOLD_ZERO_ATTR
    from automl_tl.tuning.fold_halving import fold_zero_record, runs_other_folds

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    kept = []
    for row in ordered:
        keeps = runs_other_folds(study, len(study.trials), row["kind"], CV_FOLDS, row["fold_0"])
        state = TrialState.COMPLETE if keeps else TrialState.PRUNED  # a pruned trial's fold 0 still counts for later ones
        study.add_trial(create_trial(value=row["cv"] if keeps else None, state=state,
                                     user_attrs={FOLD_ZERO_ATTR: fold_zero_record(CV_FOLDS, row["fold_0"])}))
        kept.append(keeps)
    return kept


def choose(rows: list[dict[str, Any]], size: int, seed: int, draws: int) -> dict[str, Any]:
    """Means over ``draws`` random orders of random sub-pools of ``size`` recipes (of the whole pool when ``size`` is
    its size: only the order changes), for each way of scoring: the chosen
    recipe's score, held-out accuracy, gap, whether it is the sub-pool's best held out (by its saved model), and
    the seconds of the fine-tuning trials' scoring."""
    rng = np.random.default_rng(seed)
    ways: dict[str, dict[str, list[float]]] = {w: {k: [] for k in ("score", "held_out", "gap", "best_held_out",
                                                                  "finetune_seconds", "finetune_trials")}
                                               for w in ("val_split", "full_cv", "fold_halving")}
    pruned_share: list[float] = []
    same_choice: list[float] = []
    winner_finetunes: list[float] = []
    for _ in range(draws):
        pool = [rows[i] for i in rng.permutation(len(rows))[:size]]
        kept = replay_schedule(pool)
        finetunes = [(row, keep) for row, keep in zip(pool, kept, strict=True) if row["kind"] != "head-only"]
        pruned_share.append(sum(not keep for _, keep in finetunes) / max(1, len(finetunes)))
        candidates = {
            "val_split": (pool, "val", "val_held_out", sum(r["val_seconds"] for r, _ in finetunes)),
            "full_cv": (pool, "cv", "refit_held_out", sum(cv_seconds(r) for r, _ in finetunes)),
            "fold_halving": ([r for r, keep in zip(pool, kept, strict=True) if keep], "cv", "refit_held_out",
                             sum(cv_seconds(r) if keep else r["fold_seconds"][0] for r, keep in finetunes)),
        }
        by_full_cv = max(pool, key=lambda r: r["cv"])
        same_choice.append(float(max(candidates["fold_halving"][0], key=lambda r: r["cv"]) is by_full_cv))
        winner_finetunes.append(float(by_full_cv["kind"] != "head-only"))
        for way, (ranked, score, held, seconds) in candidates.items():
            chosen = max(ranked, key=lambda r, s=score: r[s])
            best_possible = max(r[held] for r in pool)
            ways[way]["score"].append(chosen[score])
            ways[way]["held_out"].append(chosen[held])
            ways[way]["gap"].append(chosen[score] - chosen[held])
            ways[way]["best_held_out"].append(float(chosen[held] >= best_possible))
            ways[way]["finetune_seconds"].append(seconds)
            ways[way]["finetune_trials"].append(len(finetunes))
    summary: dict[str, Any] = {}
    for way, values in ways.items():
        per_trial = sum(values["finetune_seconds"]) / max(1.0, sum(values["finetune_trials"]))
        summary[way] = {k: round(float(np.mean(v)), 4) for k, v in values.items()
                        if k not in ("finetune_seconds", "finetune_trials")}
        summary[way]["seconds_per_finetune_trial"] = round(per_trial, 2)
    summary["fold_halving"]["finetune_pruned_share"] = round(float(np.mean(pruned_share)), 3)
    summary["fold_halving"]["same_choice_as_full_cv"] = round(float(np.mean(same_choice)), 3)
    summary["full_cv_winner_finetunes"] = round(float(np.mean(winner_finetunes)), 3)
    return summary


def pool_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Over every recipe, by kind: costs, how far each score is from its model's held-out accuracy, rank agreement."""
    figures: dict[str, Any] = {}
    for kind in ("head-only", "fine-tune", "all"):
        part = [r for r in rows if kind in ("all", r["kind"])]
        if len(part) < 3:
            continue
        values = {k: np.array([r[k] for r in part], dtype=float) for k in ("val", "val_held_out", "cv", "refit_held_out")}
        figures[kind] = {
            "recipes": len(part),
            "median_seconds_val_split": round(statistics.median(r["val_seconds"] for r in part), 2),
            "median_seconds_fold_0": round(statistics.median(r["fold_seconds"][0] for r in part), 2),
            "median_seconds_folds_and_refit": round(statistics.median(cv_seconds(r) for r in part), 2),
            "mean_abs_gap_val": round(float(np.mean(np.abs(values["val"] - values["val_held_out"]))), 4),
            "mean_abs_gap_cv_refit": round(float(np.mean(np.abs(values["cv"] - values["refit_held_out"]))), 4),
            "spearman_val_vs_held_out": round(spearman(values["val"], values["val_held_out"]), 3),
            "spearman_cv_vs_held_out": round(spearman(values["cv"], values["refit_held_out"]), 3),
            "spearman_fold_0_vs_cv": round(spearman(np.array([r["fold_0"] for r in part]), values["cv"]), 3),
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "automl_tl_cv_schedule")
    parser.add_argument("--head", type=int, default=16, help="head-only recipes in the pool")
    parser.add_argument("--finetune", type=int, default=16, help="fine-tuning recipes in the pool")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--held-out", type=float, default=0.35, help="share of each class kept from every choice")
    parser.add_argument("--draws", type=int, default=500, help="random orders of each sub-pool")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="replay the recipes WORK/cv_schedule.json already scored")
    args = parser.parse_args()
    if not stamps_available():
        print("Debian's tuxpaint-stamps-default is not installed (`make stamps` installs it).", file=sys.stderr)
        return 1
    work: Path = args.work
    load_before = os.getloadavg()
    started = time.perf_counter()
    if args.reuse:
        saved = json.loads((work / "cv_schedule.json").read_text())
        images, rows, started = saved["images"], saved["recipes"], started - saved["seconds"]
        load_before = saved["load_average_before"]  # of the run that scored them
    else:
        shutil.rmtree(work, ignore_errors=True)
        write_stamps_folder(work / "stamps", classes=list(stamp_classes()))
        images = split_held_out(work / "stamps", work / "search", work / "held_out", args.held_out)
        rows = score_pool(work, args)
    finetunes = [row for row in rows if row["kind"] != "head-only"]
    results = {"images": images, "image_size": args.image_size, "epochs": args.epochs, "folds": CV_FOLDS,
               "seed": args.seed, "pool": pool_figures(rows),
               "chosen": {str(size): choose(rows, size, args.seed, args.draws)
                          for size in sorted({min(10, len(rows)), min(20, len(rows)), len(rows)})},
               "chosen_among_finetunes": {str(size): choose(finetunes, size, args.seed, args.draws)
                                          for size in sorted({min(5, len(finetunes)), len(finetunes)}) if size >= 2},
               "seconds": round(time.perf_counter() - started, 1),
               "load_average_before": [round(x, 2) for x in load_before],
               "load_average_after": saved["load_average_after"] if args.reuse else [round(x, 2) for x in os.getloadavg()],
               "recipes": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]}
    (work / "cv_schedule.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "recipes"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
