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


def onnx_latency(model_file: Path, image_size: int) -> dict[str, float]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    figures = {}
    for batch in (1, 32):
        images = np.random.default_rng(0).random((batch, 3, image_size, image_size), dtype=np.float32)
        figures[f"batch_{batch}_ms"] = median_ms(lambda images=images: session.run(None, {name: images}),
                                                 warmup=3, repeats=30 if batch == 1 else 8, budget_s=5.0)
    return figures


def accuracy(export: Path, data: str, split: str, env: dict[str, str]) -> float:
    return float(json.loads(run(["evaluate", str(export), data, "--split", split, "--json"], env))["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["sample", "stamps"], default="sample")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--backbones", default="mobilenet_v2")
    parser.add_argument("--work", type=Path, default=None)
    options = parser.parse_args()
    work = options.work or Path(tempfile.mkdtemp(prefix="bench-ensemble-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, AUTOML_TL_STUDIES=str(work / "studies"), AUTOML_TL_CACHE_DIR=str(work / "cache"))
    if options.data == "stamps":
        if not stamps_available():
            raise SystemExit("the tuxpaint stamps are not installed (make stamps)")
        search_data, held_out = stamps_folders(work)
        data, judge, split = str(search_data), str(held_out), "all"
    else:
        data = str(work / "sample")
        run(["sample-data", data], env)
        judge, split = data, "test"
    run(["search", data, "--study", "bench", "--trials", str(options.trials), "--epochs", str(options.epochs),
         "--image-size", str(options.image_size), "--backbones", options.backbones, "--cv", "off"], env)
    single, ensemble = work / "single", work / "ensemble"
    run(["export", "bench", "--format", "onnx", "-o", str(single), "--overwrite"], env)
    run(["export", "bench", "--format", "onnx", "-o", str(ensemble), "--ensemble", "auto", "--overwrite"], env)
    chosen = json.loads((ensemble / "metadata.json").read_text())["ensemble"]
    results: dict[str, Any] = {"data": options.data, "trials": options.trials, "members": chosen["members"],
                               "weights": chosen["weights"]}
    for name, folder in (("single", single), ("ensemble", ensemble)):
        results[name] = {"accuracy": accuracy(folder, judge, split, env),
                         "val_accuracy": json.loads((folder / "metadata.json").read_text())["val_accuracy"],
                         "size_mb": (folder / "model.onnx").stat().st_size / 1e6,
                         **onnx_latency(folder / "model.onnx", options.image_size)}
    summed = {"batch_1_ms": 0.0, "batch_32_ms": 0.0}
    for member in chosen["members"]:
        alone = work / f"member-{member}"
        run(["export", "bench", "--format", "onnx", "-o", str(alone), "--trial", str(member), "--overwrite"], env)
        for key, value in onnx_latency(alone / "model.onnx", options.image_size).items():
            summed[key] += value
    results["members_summed"] = summed
    (work / "ensemble.json").write_text(json.dumps(results, indent=2))
    one, many = results["single"], results["ensemble"]
    print(f"data {options.data}, {options.trials} trials; judged on {'the held-out folder' if split == 'all' else 'the test split'}")
    print(f"ensemble of {len(chosen['members'])} trials {chosen['members']} (weights {chosen['weights']})")
    print(f"accuracy: single {one['accuracy']:.4f}, ensemble {many['accuracy']:.4f} ({many['accuracy'] - one['accuracy']:+.4f})")
    print(f"size: {many['size_mb']:.1f} MB = {many['size_mb'] / one['size_mb']:.2f}x the single model's {one['size_mb']:.1f} MB")
    for key in ("batch_1_ms", "batch_32_ms"):
        print(f"{key}: single {one[key]:.2f}, ensemble {many[key]:.2f} ({many[key] / one[key]:.2f}x), members one by one "
              f"{summed[key]:.2f} (the ensemble costs {many[key] / summed[key]:.2f}x of that)")
    print(f"figures in {work / 'ensemble.json'}")


if __name__ == "__main__":
    main()
