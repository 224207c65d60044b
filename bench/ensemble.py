"""Ensembles of trials against the best single trial (issue 16, part 1): accuracy, size and cost.

    .venv/bin/python bench/ensemble.py [--data sample|stamps] [--trials 16] [--epochs 4] [--image-size 32]

1. Runs ``automl-tl search`` on the data (``sample``: the bundled Animal-MNIST; ``stamps``: the tuxpaint
   stamps, of which a share of each class, chosen by a hash of the file's name, is copied to a held-out
   folder the search never reads) in a studies folder of its own.
2. Exports the chosen trial and ``--ensemble auto`` as ONNX, and ``automl-tl evaluate``s both: on the study's
   test split (sample) or on the held-out folder (stamps). Neither the search nor the selection sees either.
3. Times both ONNX files in onnxruntime at batch 1 and 32 (median of repeated runs, in the same run), and
   exports each member alone to time it: the members' summed latency is what the ensemble would cost
   without its shared pretrained prefix.

4. Replays the selections on each study (issue 24, part 4): from the trials' kept probabilities, no model
   is run. The best single trial, the old ``auto`` (the 20 best trials by rank, the best prefix kept
   whatever it scores), the same on the diverse library, and the new ``auto`` (the diverse library, kept
   only when the cross-fitted check says it pays), each judged on the study's test split, which neither the
   search nor the selection reads. ``--seeds`` and ``--cv`` make several studies; ``--replay-only`` replays
   the studies already in WORK/studies without searching.

    .venv/bin/python bench/ensemble.py --data stamps --timeout 150 --cv off,auto --seeds 0,1 --skip-export

Prints the figures as ratios against the best single trial and writes them to WORK/ensemble.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from automl_tl.runtime.timing import median_ms  # noqa: E402
from bench.photo_set import stamp_classes, stamps_available  # noqa: E402

CLI = [sys.executable, "-m", "automl_tl"]


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"automl-tl {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def stamps_folders(work: Path, held_out_share: float = 0.3) -> tuple[Path, Path]:
    """The stamps as ``work/search/<class>/`` and, for a hashed share of each class, ``work/held_out/<class>/``."""
    search, held_out = work / "search", work / "held_out"
    for name, files in stamp_classes().items():
        for path in files:
            share = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            target = (held_out if share < held_out_share else search) / name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return search, held_out


def onnx_latency(model_file: Path) -> dict[str, float]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    name, image_size = session.get_inputs()[0].name, int(session.get_inputs()[0].shape[-1])
    figures = {}
    for batch in (1, 32):
        images = np.random.default_rng(0).random((batch, 3, image_size, image_size), dtype=np.float32)
        figures[f"batch_{batch}_ms"] = median_ms(lambda images=images: session.run(None, {name: images}),
                                                 warmup=3, repeats=30 if batch == 1 else 8, budget_s=5.0)
    return figures


def accuracy(export: Path, data: str, split: str, env: dict[str, str]) -> float:
    return float(json.loads(run(["evaluate", str(export), data, "--split", split, "--json"], env))["accuracy"])


def held_out_accuracies(study: Any, artifacts: Path, folder: Path, selections: dict[str, Any]) -> dict[str, float]:
    """Each selection (an ``Ensemble``, by name) judged on the held-out ``folder``: its members' own models
    (rebuilt, nothing retrained) predict every image, and their probabilities are averaged with its weights."""
    from automl_tl.data.images import decode_image, to_model_input
    from automl_tl.deploy.export import load_trial_model
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.tuning.ensemble import score, weighted_mean

    names = list(study.user_attrs["class_names"])
    paths = sorted(p for p in folder.glob("*/*") if p.parent.name in names)
    labels = np.array([names.index(p.parent.name) for p in paths])
    plugins, probabilities = load_plugins(), {}
    for number in sorted({m for chosen in selections.values() for m in chosen.members}):
        trial = load_trial_model(plugins, study, artifacts, number)
        size, rule = trial.preprocessing.image_size, trial.preprocessing.rule
        images = to_model_input(np.stack([decode_image(p.read_bytes(), size, rule=rule) for p in paths]))
        probabilities[number] = np.concatenate([trial.adapter.predict_loaded(trial.model, trial.preprocessing, images[i:i + 32])
                                                for i in range(0, len(images), 32)])
    return {name: score(weighted_mean([probabilities[m] for m in chosen.members], list(chosen.weights)), labels)[0]
            for name, chosen in selections.items()} | {"held_out_images": float(len(paths))}


def replay(study_name: str, studies: Path, held_out: Path | None = None) -> dict[str, Any]:
    """The selections of one study replayed from its trials' kept probabilities, judged on its test split
    (and, with ``held_out``, on that folder too)."""
    import optuna

    from automl_tl.storage.artifacts import study_artifact_places
    from automl_tl.storage.urls import storage_url
    from automl_tl.tuning.ensemble import candidates, select_ensemble

    os.environ["AUTOML_TL_STUDIES"] = str(studies)
    study = optuna.load_study(study_name=study_name, storage=storage_url(study_name, None))
    local, _ = study_artifact_places(study, None)
    ranked, diverse = candidates(study, local, diverse=False), candidates(study, local)
    old, diverse_old = select_ensemble(ranked, "auto", decide=False), select_ensemble(diverse, "auto", decide=False)
    new, ranked_new = select_ensemble(diverse, "auto"), select_ensemble(ranked, "auto")
    proposed = new.proposed or new
    judged = {}
    if held_out is not None:
        single = replace(new, members=(new.best_single,), weights=(1,))
        judged = held_out_accuracies(study, local, held_out, {"single": single, "old_auto": old, "diverse_unchecked": diverse_old,
                                                               "new_auto": new, "ranked_checked": ranked_new})
    return {"held_out": judged, "study": study_name, "library": len(diverse), "groups": len({c.group for c in diverse}),
            "val_rows": len(diverse[0].val.labels), "test_rows": len(diverse[0].test.labels) if diverse[0].test else 0,
            "single": new.best_single_test_accuracy, "old_auto": old.test_accuracy, "old_size": old.size,
            "diverse_unchecked": diverse_old.test_accuracy, "diverse_size": diverse_old.size,
            "new_auto": new.test_accuracy, "new_exports_ensemble": new.size > 1, "proposed_size": proposed.size,
            "ranked_checked": ranked_new.test_accuracy,
            "cross_fitted": new.decision.to_dict() if new.decision else None}


def print_replays(replays: list[dict[str, Any]]) -> None:
    print("study                 library groups val test | single  old auto (n) | diverse, unchecked (n) | "
          "new auto  ensemble? | cross-fitted ens/single")
    for r in replays:
        check = r["cross_fitted"]
        fitted = f"{check['ensemble_accuracy']:.3f}/{check['single_accuracy']:.3f}" if check else "-"
        print(f"{r['study']:<22}{r['library']:>7}{r['groups']:>7}{r['val_rows']:>4}{r['test_rows']:>5} | {r['single']:.4f}  "
              f"{r['old_auto']:.4f} ({r['old_size']}) | {r['diverse_unchecked']:.4f} ({r['diverse_size']}) | "
              f"{r['new_auto']:.4f}  {'yes' if r['new_exports_ensemble'] else 'no'} | {fitted}")
    rows = sum(r["test_rows"] for r in replays)
    for key in ("single", "old_auto", "diverse_unchecked", "ranked_checked", "new_auto"):
        pooled = sum(r[key] * r["test_rows"] for r in replays) / max(rows, 1)
        print(f"pooled over {rows} test images, {key}: {pooled:.4f}")
    judged = [r for r in replays if r["held_out"]]
    images = sum(r["held_out"]["held_out_images"] for r in judged)
    for key in ("single", "old_auto", "diverse_unchecked", "ranked_checked", "new_auto"):
        if judged:
            pooled = sum(r["held_out"][key] * r["held_out"]["held_out_images"] for r in judged) / images
            each = ", ".join(f"{r['held_out'][key]:.4f}" for r in judged)
            print(f"held-out folder, {len(judged)} studies x {images / len(judged):.0f} images, {key}: {pooled:.4f}  ({each})")
    print(f"new auto exports an ensemble in {sum(r['new_exports_ensemble'] for r in replays)} of {len(replays)} studies "
          f"(the old auto in {sum(r['old_size'] > 1 for r in replays)})")


def export_and_time(study: str, options: argparse.Namespace, work: Path, judge: str, split: str,
                    env: dict[str, str]) -> None:
    """Steps 2 and 3: the chosen trial and ``--ensemble auto`` exported, judged and timed."""
    single, ensemble = work / "single", work / "ensemble"
    run(["export", study, "--format", "onnx", "-o", str(single), "--overwrite"], env)
    print(run(["export", study, "--format", "onnx", "-o", str(ensemble), "--ensemble", "auto", "--overwrite"], env))
    chosen = json.loads((ensemble / "metadata.json").read_text())["ensemble"]
    results: dict[str, Any] = {"data": options.data, "trials": options.trials, "members": chosen["members"],
                               "weights": chosen["weights"]}
    for name, folder in (("single", single), ("ensemble", ensemble)):
        results[name] = {"accuracy": accuracy(folder, judge, split, env),
                         "val_accuracy": json.loads((folder / "metadata.json").read_text())["val_accuracy"],
                         "size_mb": (folder / "model.onnx").stat().st_size / 1e6,
                         **onnx_latency(folder / "model.onnx")}
    summed = {"batch_1_ms": 0.0, "batch_32_ms": 0.0}
    for member in chosen["members"]:
        alone = work / f"member-{member}"
        run(["export", study, "--format", "onnx", "-o", str(alone), "--trial", str(member), "--overwrite"], env)
        for key, value in onnx_latency(alone / "model.onnx").items():
            summed[key] += value
    results["members_summed"] = summed
    (work / "ensemble.json").write_text(json.dumps(results, indent=2))
    one, many = results["single"], results["ensemble"]
    print(f"data {options.data}, {options.trials} trials; judged on {'the held-out folder' if split == 'all' else 'the test split'}")
    print(f"auto exports {len(chosen['members'])} trial(s) {chosen['members']} (weights {chosen['weights']})")
    print(f"accuracy: single {one['accuracy']:.4f}, auto {many['accuracy']:.4f} ({many['accuracy'] - one['accuracy']:+.4f})")
    print(f"size: {many['size_mb']:.1f} MB = {many['size_mb'] / one['size_mb']:.2f}x the single model's {one['size_mb']:.1f} MB")
    for key in ("batch_1_ms", "batch_32_ms"):
        print(f"{key}: single {one[key]:.2f}, auto {many[key]:.2f} ({many[key] / one[key]:.2f}x), members one by one "
              f"{summed[key]:.2f} (the export costs {many[key] / summed[key]:.2f}x of that)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["sample", "stamps"], default="sample")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=None, help="search by time instead of --trials")
    parser.add_argument("--epochs", default="4")
    parser.add_argument("--image-size", default="32")
    parser.add_argument("--backbones", default="mobilenet_v2")
    parser.add_argument("--cv", default="off", help="comma-separated --cv settings, one study each")
    parser.add_argument("--seeds", default="0", help="comma-separated search seeds, one study each")
    parser.add_argument("--skip-export", action="store_true", help="replay the selections only (steps 1 and 4)")
    parser.add_argument("--replay-only", action="store_true", help="replay the studies already in WORK/studies")
    parser.add_argument("--work", type=Path, default=None)
    options = parser.parse_args()
    work = options.work or Path(tempfile.mkdtemp(prefix="bench-ensemble-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, AUTOML_TL_STUDIES=str(work / "studies"), AUTOML_TL_CACHE_DIR=str(work / "cache"))
    if options.data == "stamps":
        if not stamps_available():
            raise SystemExit("the tuxpaint stamps are not installed (make stamps)")
        search_data, held_out = (work / "search", work / "held_out") if options.replay_only else stamps_folders(work)
        data, judge, split = str(search_data), str(held_out), "all"
    else:
        data = str(work / "sample")
        if not options.replay_only:
            run(["sample-data", data], env)
        judge, split = data, "test"
    settings = [(cv, int(seed)) for cv in options.cv.split(",") for seed in options.seeds.split(",")]
    names = ["bench" if len(settings) == 1 else f"bench-cv{cv}-s{seed}" for cv, seed in settings]
    budget = ["--timeout", str(options.timeout)] if options.timeout else ["--trials", str(options.trials)]
    for name, (cv, seed) in zip(names, settings):
        if not options.replay_only:
            run(["search", data, "--study", name, *budget, "--epochs", options.epochs, "--image-size", options.image_size,
                 "--backbones", options.backbones, "--cv", cv, "--seed", str(seed)], env)
    replays = [replay(name, work / "studies", Path(judge) if options.data == "stamps" else None) for name in names]
    print_replays(replays)
    (work / "replays.json").write_text(json.dumps(replays, indent=2))
    if not options.skip_export:
        export_and_time(names[0], options, work, judge, split, env)
    print(f"figures in {work}")


if __name__ == "__main__":
    main()
