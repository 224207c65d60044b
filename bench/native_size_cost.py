"""What a larger study input costs each backbone (issue 24, part 3): forward seconds per image at each size.

    .venv/bin/python bench/native_size_cost.py [--sizes 224,240,260] [--rounds 3] [--backbones ...] [--probe DATA]

Times every block of each backbone with the torch adapter's ``block_seconds`` (what the cost model prices
trials with), ``--rounds`` times, sizes and backbones interleaved so that a load spike on the machine spreads
over all of them, and prints the least over rounds of the summed blocks in ms per image (other processes only
ever add time, so the least is the least disturbed; the median is printed after it), each size's ratio to the
first size's, and the load average. Every round measures anew (the adapter itself, not the search's cached
figures). Nothing goes to the user's cache: ``AUTOML_TL_CACHE_DIR`` is ``--cache``, by default a new temporary
folder (name one again to reuse the decoded images and features of an earlier ``--probe``).

With ``--probe DATA`` (an image folder), it also says what each size buys: the accuracy of a closed-form ridge
classifier on each backbone's frozen last-block features of every image of DATA, loaded at each size with the
study's resize rule, scored by 5-fold cross-validation (the same folds at every size and for every backbone).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torchvision  # noqa: F401  (before anything that may import tensorflow)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/native_size_cost.py` from the root

BACKBONES = "mobilenet_v2,efficientnet_lite0,efficientnet_lite1,efficientnet_lite2"
FOLDS = 5


def ridge_cv_accuracy(features: np.ndarray, labels: np.ndarray, l2: float = 1.0, seed: int = 0) -> float:
    """Accuracy of a ridge classifier (one-hot targets, standardised features) over ``FOLDS`` folds."""
    fold = np.random.default_rng(seed).permutation(len(labels)) % FOLDS
    right = 0
    for k in range(FOLDS):
        train, held = fold != k, fold == k
        x = features[train].astype(np.float64)
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
        x = (x - mean) / std
        gram = x.T @ x + l2 * len(x) * 1e-3 * np.eye(x.shape[1])
        weights = np.linalg.solve(gram, x.T @ np.eye(labels.max() + 1)[labels[train]])
        right += int(np.sum((((features[held] - mean) / std) @ weights).argmax(axis=1) == labels[held]))
    return right / len(labels)


def probe(plugins: Any, data: str, names: list[str], sizes: list[int]) -> None:
    """Print the ridge probe's cross-validated accuracy for each backbone at each size (see the docstring)."""
    from automl_tl.data import load_table
    from automl_tl.data.resolution import study_rule, typical_shorter_side

    specs = [plugins.backbone(name) for name in names]
    splits = plugins.dataset_for(data).discover(data)
    rule, _ = study_rule(specs, "crop")
    print(f"{data}: {len(splits.items)} images, typically {typical_shorter_side(splits.items)} px on the shorter "
          f"side; {rule.describe()}; ridge probe, {FOLDS}-fold accuracy")
    print(f"{'backbone':<20}" + "".join(f"{size:>9}" for size in sizes))
    tables = {size: load_table(splits, size, show_progress=False, rule=rule) for size in sizes}
    for spec in specs:
        adapter = plugins.framework(spec.framework)
        scores = [ridge_cv_accuracy(adapter.block_features(spec, tables[size], len(spec.blocks)),
                                    np.asarray(tables[size].labels)) for size in sizes]
        print(f"{spec.name:<20}" + "".join(f"{score:9.3f}" for score in scores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="224,240,260")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backbones", default=BACKBONES)
    parser.add_argument("--probe", metavar="DATA", help="an image folder: also score a ridge probe at each size")
    parser.add_argument("--cache", type=Path, default=None, help="the cache folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    os.environ["AUTOML_TL_CACHE_DIR"] = str(args.cache or tempfile.mkdtemp(prefix="native-size-cost-"))
    from automl_tl.plugin.manager import load_plugins

    plugins = load_plugins()
    sizes = [int(size) for size in args.sizes.split(",")]
    names = args.backbones.split(",")
    if args.probe:
        probe(plugins, args.probe, names, sizes)
    seconds: dict[tuple[str, int], list[float]] = {(name, size): [] for name in names for size in sizes}
    loads = []
    for _ in range(args.rounds):
        for name in names:
            spec = plugins.backbone(name)
            measure = getattr(plugins.framework(spec.framework), "block_seconds", None)  # optional for adapters
            if measure is None:
                raise SystemExit(f"{name}: its framework adapter cannot time its blocks")
            for size in sizes:
                seconds[name, size].append(sum(measure(spec, size)))
                loads.append(os.getloadavg()[0])
    if not loads:
        return 0
    print(f"{os.cpu_count()} CPUs, load average {min(loads):.1f}-{max(loads):.1f} while timing, "
          f"least of {args.rounds} rounds, ms per image (all blocks forward, inference)")
    print(f"{'backbone':<20}{'native':>7}" + "".join(f"{size:>9}" for size in sizes) + "".join(
        f"{f'{size}/{sizes[0]}':>9}" for size in sizes[1:]) + "  median of rounds")
    for name in names:
        least = [min(seconds[name, size]) * 1000 for size in sizes]
        medians = [statistics.median(seconds[name, size]) * 1000 for size in sizes]
        native = plugins.backbone(name).default_image_size
        print(f"{name:<20}{native:>7}" + "".join(f"{ms:9.1f}" for ms in least)
              + "".join(f"{ms / least[0]:9.2f}" for ms in least[1:]) + "  " + " ".join(f"{ms:.1f}" for ms in medians))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
