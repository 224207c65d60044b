"""Honest selection on small data (issue 16, part 5): the chosen model's score against its accuracy on images
no search ever saw, with trials scored on the validation split (``--cv off``) and by 5-fold cross-validation.

    .venv/bin/python bench/small_data_cv.py [--work DIR] [--timeout 240] [--image-size 96] [--held-out 0.35]

1. Copies the tuxpaint stamps (13 classes, about 500 images) into ``WORK/search/<class>/`` and, for a share of
   each class chosen by a hash of the file's name, ``WORK/held_out/<class>/``: a folder the search never reads.
2. Runs ``automl-tl search WORK/search`` for the same ``--timeout`` twice, ``--cv off`` and ``--cv 5``, each
   with a cold activation cache and a studies folder of its own.
3. Exports each study's chosen trial and runs ``automl-tl evaluate EXPORT WORK/held_out --split all``.
4. For the cross-validated study's best trials, trains the same recipe again without the refit (fold 0's
   model at its best epoch) and compares both models on the held-out folder.
5. Reports the seconds of each fold of the cross-validated trials (the folds after the first read the
   activation cache).
6. ``pool``: the selection itself, with many trials. ``--pool N`` random head-only recipes (the cheap trials of
   which a search runs hundreds) are each scored both ways on the same images: on the validation split (the
   model trained on train), and by 5-fold CV (fold 0's model, and the refit on train and val). Each model's
   held-out accuracy is read from the same run: the held-out images are the test split of one table with the
   search's images, which no model trains or is chosen on. Sub-pools of 10, 50 and all trials are drawn many
   times; each time the best by validation and the best by CV are "chosen", as a search would.

    .venv/bin/python bench/small_data_cv.py --parts cli,pool    (default; pool alone: --parts pool)

Prints the figures and writes them to WORK/results.json (each part replaces its own entries).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torchvision  # noqa: F401  (before anything that may import tensorflow)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/small_data_cv.py` from the repository root

from bench.photo_set import stamp_classes, stamps_available, write_stamps_folder  # noqa: E402

CV_FOLDS = 5


def split_held_out(stamps: Path, search: Path, held_out: Path, share: float, salt: str = "held-out") -> dict[str, int]:
    """Copy ``share`` of each class's files (rounded; the first in the order of a hash of ``salt`` and the name)
    into ``held_out``, the rest into ``search``: every class keeps its share on both sides."""
    counts = {"search": 0, "held_out": 0}
    for class_dir in sorted(p for p in stamps.iterdir() if p.is_dir()):
        images = sorted(class_dir.iterdir(), key=lambda i: hashlib.sha256(f"{salt}|{class_dir.name}/{i.name}".encode()).digest())
        kept = round(share * len(images))
        for position, image in enumerate(images):
            place = "held_out" if position < kept else "search"
            target = (held_out if place == "held_out" else search) / class_dir.name / image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, target)
            counts[place] += 1
    return counts


def automl(env: dict[str, str], *args: str, capture: bool = False) -> str:
    command = [sys.executable, "-m", "automl_tl", *args]
    done = subprocess.run(command, env=env, check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def study_env(work: Path, name: str) -> dict[str, str]:
    return {**os.environ, "AUTOML_TL_STUDIES": str(work / name / "studies"),
            "AUTOML_TL_CACHE_DIR": str(work / name / "cache")}


def run_arm(work: Path, name: str, cv: str, args: argparse.Namespace) -> dict[str, Any]:
    """One search, its export and its evaluation on the held-out folder."""
    env = study_env(work, name)
    started = time.perf_counter()
    automl(env, "search", str(work / "search"), "--study", name, "--cv", cv, "--timeout", str(args.timeout),
           "--trials", "10000", "--image-size", str(args.image_size), "--seed", str(args.seed))
    seconds = time.perf_counter() - started
    export = work / name / "export"
    automl(env, "export", name, "--format", "onnx", "-o", str(export), "--overwrite")
    held = json.loads(automl(env, "evaluate", str(export), str(work / "held_out"), "--split", "all", "--json",
                             capture=True))
    study = load_study(env, name)
    best = study.best_trial
    return {"cv": cv, "search_seconds": round(seconds, 1), "trials_completed": completed(study),
            "trials_pruned": pruned(study), "chosen_trial": best.number, "chosen_score": round(float(best.value), 4),
            "chosen_search_test": round(float(best.user_attrs["test_accuracy"]), 4),
            "held_out_images": held["images"], "held_out_accuracy": round(float(held["accuracy"]), 4),
            "gap": round(float(best.value) - float(held["accuracy"]), 4)}


def load_study(env: dict[str, str], name: str) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=f"sqlite:///{Path(env['AUTOML_TL_STUDIES']) / f'{name}.db'}")


def completed(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def pruned(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))


def held_out_accuracy(adapter: Any, spec: Any, model: Any, preprocessing: Any, table: Any) -> float:
    from automl_tl.training.metrics import accuracy

    outputs = []
    for start in range(0, len(table.labels), 64):
        batch = np.asarray(table.images[start : start + 64], np.float32) / 255.0
        outputs.append(adapter.predict_loaded(model, preprocessing, batch))
    return accuracy(np.concatenate(outputs), table.labels)


def refit_against_fold_0(work: Path, name: str, args: argparse.Namespace, top: int) -> list[dict[str, Any]]:
    """The cross-validated study's best ``top`` trials: their refit model (what the trial saved) against fold 0's
    model of the same recipe (trained again here, the same folds and seed), both on the held-out folder."""
    env = study_env(work, name)
    os.environ.update({k: env[k] for k in ("AUTOML_TL_STUDIES", "AUTOML_TL_CACHE_DIR")})
    from automl_tl.data import FolderDataset, load_table
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.storage.artifacts import read_trial, study_folder, study_key
    from automl_tl.training.cross_validation import run_trial_scored
    from automl_tl.tuning.budget import ranked_trials
    from automl_tl.types import Preprocessing, TrialConfig

    study = load_study(env, name)
    plugins = load_plugins()
    folder = study_folder(Path(study.user_attrs["artifacts"]), study_key(study))
    rows = []
    for trial in ranked_trials(study)[:top]:
        directory, meta = read_trial(folder, trial.number, name, study_key(study))
        spec, adapter = plugins.backbone(meta["backbone"]), plugins.framework(meta["framework"])
        config = TrialConfig(**meta["config"])
        prep = Preprocessing.from_dict(meta["preprocessing"])
        search = load_table(FolderDataset().discover(str(work / "search")), prep.image_size, rule=prep.rule,
                            show_progress=False)
        held = load_table(FolderDataset().discover(str(work / "held_out")), prep.image_size, rule=prep.rule,
                          show_progress=False)
        n_classes = len(meta["class_names"])
        refit_model = adapter.load(spec, directory, n_classes, config)
        with tempfile.TemporaryDirectory() as scratch:
            again = run_trial_scored(adapter, spec, config, search, CV_FOLDS, save_to=Path(scratch), seed=args.seed,
                                     refit=False)
            fold_0_model = adapter.load(spec, Path(scratch), n_classes, config)
        rows.append({"trial": trial.number, "cv_score": round(float(trial.value or 0.0), 4),
                     "cv_score_again": round(again.val_accuracy, 4),
                     "refit_held_out": round(held_out_accuracy(adapter, spec, refit_model, prep, held), 4),
                     "fold_0_held_out": round(held_out_accuracy(adapter, spec, fold_0_model, prep, held), 4)})
    return rows


def fold_seconds(work: Path, name: str) -> dict[str, Any]:
    """Seconds of fold 0 against the later folds, for head-only and fine-tuning trials, and for the first trial of
    each (backbone, frozen blocks) pair, whose fold 0 computed the activations the later folds read."""
    from optuna.trial import TrialState

    study = load_study(study_env(work, name), name)
    kinds: dict[str, dict[str, list[float]]] = {}
    first_of_prefix: dict[tuple[str, int], dict[str, Any]] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        seconds = trial.user_attrs.get("cv_fold_seconds")
        if not seconds:
            continue
        switch = trial.params.get("switch_epoch")
        finetunes = switch is not None and int(switch) < int(study.user_attrs["epochs"])
        kind = kinds.setdefault("fine-tune" if finetunes else "head only", {"fold 0": [], "later folds": []})
        kind["fold 0"].append(seconds[0])
        kind["later folds"].extend(seconds[1:])
        prefix = (str(trial.params.get("backbone")), int(trial.user_attrs.get("frozen_blocks", -1)))
        first_of_prefix.setdefault(prefix, {"trial": trial.number, "fold_seconds": seconds,
                                            "refit_seconds": trial.user_attrs.get("cv_refit_seconds")})
    summary = {kind: {part: round(statistics.median(values), 2) if values else None for part, values in parts.items()}
               | {"trials": len(parts["fold 0"])} for kind, parts in kinds.items()}
    return {"median_seconds": summary, "first_trial_of_each_prefix": {f"{b} frozen {f}": v for (b, f), v in
                                                                       sorted(first_of_prefix.items())}}


def pool_recipes(count: int, backbones: list[str], epochs: int, image_size: int, seed: int) -> list[Any]:
    """``count`` random head-only recipes from the search space's own ranges (cut point, head, dropout, rate, views)."""
    from automl_tl.tuning.space import HEAD_UNITS
    from automl_tl.types import TrialConfig

    rng = np.random.default_rng(seed)
    return [TrialConfig(backbone=str(rng.choice(backbones)), freeze_fraction=1.0,
                        head_units=int(rng.choice(HEAD_UNITS)), head_dropout=round(float(rng.integers(0, 11)) * 0.05, 2),
                        lr=float(np.exp(rng.uniform(np.log(1e-4), np.log(3e-2)))), finetune_lr_ratio=1.0,
                        switch_epoch=epochs, epochs=epochs, image_size=image_size,
                        cut_fraction=float(rng.choice(np.arange(0.5, 1.0001, 0.125))),
                        augment=str(rng.choice(["none", "hflip"])), seed=seed) for _ in range(count)]


def joined_table(work: Path, image_size: int) -> Any:
    """The search folder's images with its own splits, and the held-out folder's as the test split. The search
    folder's test split is in no split at all: nothing here trains on it, as nothing in a search chooses by it."""
    import dataclasses

    from automl_tl.data import FolderDataset, load_table
    from automl_tl.types import ResizeRule

    rule = ResizeRule("crop", 1.0)  # what the searches chose for these backbones (their "Input" line)
    search = load_table(FolderDataset().discover(str(work / "search")), image_size, rule=rule, show_progress=False)
    held = load_table(FolderDataset().discover(str(work / "held_out")), image_size, rule=rule, show_progress=False)
    assert search.class_names == held.class_names
    offset = len(search.labels)
    return dataclasses.replace(
        search, images=np.concatenate([np.asarray(search.images), np.asarray(held.images)]),
        labels=np.concatenate([search.labels, held.labels]),
        relpaths=search.relpaths + tuple(f"held_out/{r}" for r in held.relpaths),
        content_hashes=search.content_hashes + held.content_hashes, manifest_hash="",
        splits={"train": search.splits["train"], "val": search.splits["val"],
                "test": offset + np.arange(len(held.labels), dtype=np.int64)})


def pool_repeats(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``pool_selection`` on ``--repeats`` held-out partitions (the first is the searches' own), and the means: one
    partition's 174 held-out images judge a model to about 3 points, as much as the differences measured."""
    os.environ.update({"AUTOML_TL_CACHE_DIR": str(work / "pool" / "cache")})
    runs = []
    for repeat in range(args.repeats):
        folder = work if repeat == 0 else work / "pool" / f"partition_{repeat}"
        if repeat and not (folder / "held_out").is_dir():  # the partition follows from its salt alone
            split_held_out(work / "stamps", folder / "search", folder / "held_out", args.held_out, salt=f"held-out-{repeat}")
        saved = folder / "pool_result.json"  # a partition already measured with these settings is read back
        setting = {"pool": args.pool, "seed": args.seed, "image_size": args.image_size}
        if saved.is_file() and json.loads(saved.read_text()).get("setting") == setting:
            runs.append(json.loads(saved.read_text())["result"])
            continue
        runs.append(pool_selection(folder, args))
        saved.write_text(json.dumps({"setting": setting, "result": runs[-1]}))
    chosen = {size: {k: round(float(np.mean([run["chosen"][size][k] for run in runs])), 4) for k in picks}
              for size, picks in runs[0]["chosen"].items()}
    everything = {k: round(float(np.mean([run["all_trials"][k] for run in runs])), 4) for k in runs[0]["all_trials"]}
    return {"repeats": len(runs), "mean_over_partitions": {"chosen": chosen, "all_trials": everything}, "partitions": runs}


def pool_selection(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Score ``--pool`` head-only recipes both ways on ``work``'s search and held-out folders, then choose from
    sub-pools as a search would."""
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.training.cross_validation import run_trial_scored, train_for_epochs
    from automl_tl.training.engine import run_trial
    from automl_tl.training.folds import refit_table
    from automl_tl.training.metrics import accuracy

    plugins = load_plugins()
    table = joined_table(work, args.image_size)
    held_labels = table.labels[table.splits["test"]]
    rows = []
    started = time.perf_counter()
    for config in pool_recipes(args.pool, ["efficientnet_lite0", "mobilenet_v2"], 12, args.image_size, args.seed):
        spec = plugins.backbone(config.backbone)
        adapter = plugins.framework(spec.framework)
        single = run_trial(adapter, spec, config, table)
        scored = run_trial_scored(adapter, spec, config, table, CV_FOLDS, seed=args.seed, refit=False)
        refit = train_for_epochs(adapter, spec, scored.config, refit_table(table), scored.best_epoch + 1)
        rows.append({"val": single.val_accuracy, "val_held_out": single.test_accuracy,
                     "cv": scored.val_accuracy, "fold_0_held_out": scored.test_accuracy,
                     "refit_held_out": accuracy(refit, held_labels)})
    seconds = time.perf_counter() - started
    return {"recipes": len(rows), "seconds": round(seconds, 1), "val_images": int(len(table.splits["val"])),
            "cv_images": int(len(table.splits["train"]) + len(table.splits["val"])),
            "held_out_images": int(len(held_labels)), "all_trials": summarise_all(rows),
            "chosen": {str(size): choose_from_pools(rows, size, args.seed) for size in (10, 50, len(rows))},
            "trials": [{k: round(v, 4) for k, v in row.items()} for row in rows]}


def summarise_all(rows: list[dict[str, float]]) -> dict[str, float]:
    """Over every recipe: how far each score is from the model's held-out accuracy, and how well it ranks them."""
    values = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    return {"mean_gap_val": round(float(np.mean(values["val"] - values["val_held_out"])), 4),
            "mean_gap_cv_fold_0": round(float(np.mean(values["cv"] - values["fold_0_held_out"])), 4),
            "mean_gap_cv_refit": round(float(np.mean(values["cv"] - values["refit_held_out"])), 4),
            "mean_abs_gap_val": round(float(np.mean(np.abs(values["val"] - values["val_held_out"]))), 4),
            "mean_abs_gap_cv_refit": round(float(np.mean(np.abs(values["cv"] - values["refit_held_out"]))), 4),
            "rank_corr_val_vs_held_out": round(spearman(values["val"], values["val_held_out"]), 3),
            "rank_corr_cv_vs_held_out": round(spearman(values["cv"], values["refit_held_out"]), 3),
            "mean_held_out_val_model": round(float(values["val_held_out"].mean()), 4),
            "mean_held_out_fold_0": round(float(values["fold_0_held_out"].mean()), 4),
            "mean_held_out_refit": round(float(values["refit_held_out"].mean()), 4)}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def choose_from_pools(rows: list[dict[str, float]], size: int, seed: int, draws: int = 500) -> dict[str, float]:
    """Mean over ``draws`` random sub-pools of ``size`` recipes: the best by validation and the best by CV, their
    scores, held-out accuracies and gaps (score minus held-out). One draw when ``size`` is the whole pool."""
    rng = np.random.default_rng(seed)
    picks: dict[str, list[float]] = {k: [] for k in ("val_score", "val_held_out", "cv_score", "cv_refit_held_out",
                                                      "cv_fold_0_held_out")}
    for _ in range(1 if size >= len(rows) else draws):
        pool = [rows[i] for i in (range(len(rows)) if size >= len(rows) else rng.choice(len(rows), size, replace=False))]
        by_val = max(pool, key=lambda r: r["val"])
        by_cv = max(pool, key=lambda r: r["cv"])
        picks["val_score"].append(by_val["val"])
        picks["val_held_out"].append(by_val["val_held_out"])
        picks["cv_score"].append(by_cv["cv"])
        picks["cv_refit_held_out"].append(by_cv["refit_held_out"])
        picks["cv_fold_0_held_out"].append(by_cv["fold_0_held_out"])
    means = {k: float(np.mean(v)) for k, v in picks.items()}
    means["val_gap"] = means["val_score"] - means["val_held_out"]
    means["cv_refit_gap"] = means["cv_score"] - means["cv_refit_held_out"]
    return {k: round(v, 4) for k, v in means.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "automl_tl_small_data_cv")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per search (default %(default)s)")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--held-out", type=float, default=0.35, help="share of each class kept from the search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=3, help="CV trials whose refit is compared with fold 0's model")
    parser.add_argument("--pool", type=int, default=40, help="random head-only recipes scored both ways (part pool)")
    parser.add_argument("--repeats", type=int, default=5, help="held-out partitions the pool part runs on")
    parser.add_argument("--parts", default="cli,pool", help="cli (the two searches), pool (selection), or both")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not stamps_available():
        print("Debian's tuxpaint-stamps-default is not installed (`make stamps` installs it).", file=sys.stderr)
        return 1
    work: Path = args.work
    results: dict[str, Any] = {}
    if "cli" in parts or not (work / "held_out").is_dir():  # the searches need fresh studies; pool reuses the folders
        shutil.rmtree(work, ignore_errors=True)
        write_stamps_folder(work / "stamps", classes=list(stamp_classes()))
        counts = split_held_out(work / "stamps", work / "search", work / "held_out", args.held_out)
        results.update({"images": counts, "classes": len(stamp_classes()), "image_size": args.image_size,
                        "seed": args.seed})
    elif (work / "results.json").is_file():
        results = json.loads((work / "results.json").read_text())
    if "cli" in parts:
        results["timeout_s"] = args.timeout
        results["single_split"] = run_arm(work, "cv_off", "off", args)
        results["cross_validated"] = run_arm(work, "cv_5", str(CV_FOLDS), args)
        results["refit_against_fold_0"] = refit_against_fold_0(work, "cv_5", args, args.top)
        results["fold_seconds"] = fold_seconds(work, "cv_5")
    if "pool" in parts:
        results["pool"] = pool_repeats(work, args)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
