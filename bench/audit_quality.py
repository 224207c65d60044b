"""How well the data audit finds planted faults in Debian's tuxpaint stamps, and what it adds to a search.

The stamps (``make stamps``) are copied into a folder per class (``bench/photo_set.py``), then faults are
planted, each recorded as the truth:

* leaks: test images copied into train of the same class, half byte for byte, half resized by 0.8 to 1.2
  and re-encoded (JPEG at quality 85, or PNG), a few also turned a quarter;
* exact duplicates: train images copied within their class, and into another class (both in train);
* relabelled images: about 5% of the images moved to another class, named so they stay in train (where
  cross-validation's out-of-fold probabilities see them);
* thumbnails: images replaced by a 16x16 copy of themselves; oblong strips (5:1 crops) and truncated files.

Then ``automl-tl audit --json`` is run on the folder, and a cross-validated search
(``automl-tl search --cv 5 --timeout T``) whose best trial's out-of-fold probabilities rank the label
errors. Precision and recall are given per check: duplicates at the level of pairs of files (a pair is
right when both files are of one planted family, an original and its copies), leaks and the single-image
checks at the level of files. The label-error criterion of issue 26 is "at least half of the planted label
errors are in the top list of twice their number". The JSON result goes to ``--out`` (default
``WORK/results.json``).

    .venv/bin/python bench/audit_quality.py --work /tmp/audit_bench --timeout 240
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from automl_tl.data.split import path_unit_hash  # noqa: E402
from bench.photo_set import stamps_available, write_stamps_folder  # noqa: E402

LEAKS, WITHIN, ACROSS, THUMBS, STRIPS, BROKEN = 30, 10, 10, 10, 5, 5
RELABEL_SHARE = 0.05


def split_of(relpath: str) -> str:
    u = path_unit_hash(relpath)
    return "val" if u < 0.15 else "test" if u < 0.30 else "train"


def train_name(folder: Path, stem: str, suffix: str = ".png") -> Path:
    """A new file in ``folder`` whose path (relative to the data root) lands in train."""
    for n in range(10_000):
        path = folder / f"{stem}_{n}{suffix}"
        if not path.exists() and split_of(f"{folder.name}/{path.name}") == "train":
            return path
    raise RuntimeError("no name lands in train")


def reencoded(data: bytes, rng: np.random.Generator, turn: bool) -> tuple[bytes, str]:
    """The image resized by 0.8 to 1.2 and saved again (JPEG at 85 or PNG), maybe turned a quarter."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGBA")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    white.alpha_composite(image)
    scale = float(rng.uniform(0.8, 1.2))
    image = white.convert("RGB").resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))))
    if turn:
        image = image.rotate(90, expand=True)
    buffer = io.BytesIO()
    fmt = "JPEG" if rng.random() < 0.5 else "PNG"
    image.save(buffer, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buffer.getvalue(), ".jpg" if fmt == "JPEG" else ".png"


def plant(root: Path, seed: int) -> dict[str, Any]:
    """Plant every fault in ``root`` (a folder per class of stamps); returns the truth."""
    rng = np.random.default_rng(seed)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    by_split = {s: [f for f in files if split_of(f) == s] for s in ("train", "val", "test")}
    pick = _picker(rng)
    truth: dict[str, Any] = {"families": [], "leaks": [], "small": [], "oblong": [], "broken": [], "relabelled": []}

    def copy(source: str, folder: str, data: bytes, suffix: str, kind: str) -> None:
        target = train_name(root / folder, "copy", suffix)
        target.write_bytes(data)
        exact = data == (root / source).read_bytes()
        truth["families"].append({"kind": kind, "exact": exact, "files": [source, target.relative_to(root).as_posix()]})
        if kind == "leak":
            truth["leaks"].append(target.relative_to(root).as_posix())

    for k, source in enumerate(pick(by_split["test"], LEAKS)):
        data = (root / source).read_bytes()
        if k % 2:
            data, suffix = reencoded(data, rng, turn=k % 6 == 1)
            copy(source, source.split("/")[0], data, suffix, "leak")
        else:
            copy(source, source.split("/")[0], data, ".png", "leak")
    for source in pick(by_split["train"], WITHIN):
        copy(source, source.split("/")[0], (root / source).read_bytes(), ".png", "within_class")
    for source in pick(by_split["train"], ACROSS):
        other = str(rng.choice([c for c in classes if c != source.split("/")[0]]))
        copy(source, other, (root / source).read_bytes(), ".png", "across_classes")
    _plant_single_faults(root, rng, pick, by_split["train"], truth)
    _relabel(root, rng, pick, [f for f in by_split["train"] + by_split["val"]], classes, truth)
    return truth


def _picker(rng: np.random.Generator) -> Any:
    used: set[str] = set()

    def pick(pool: list[str], count: int) -> list[str]:
        free = [f for f in pool if f not in used]
        chosen = [free[i] for i in rng.choice(len(free), min(count, len(free)), replace=False)]
        used.update(chosen)
        return chosen
    return pick


def _plant_single_faults(root: Path, rng: np.random.Generator, pick: Any, pool: list[str], truth: dict[str, Any]) -> None:
    """Thumbnails (in place), oblong strips and truncated files, each on an image no other fault touches."""
    for source in pick(pool, THUMBS):
        with Image.open(root / source) as opened:
            opened.convert("RGBA").resize((16, 16)).save(root / source)
        truth["small"].append(source)
    for source in pick(pool, STRIPS):
        with Image.open(root / source) as opened:
            image = opened.convert("RGBA")
        strip = image.crop((0, 0, image.width, max(1, image.width // 5)))
        target = train_name((root / source).parent, "strip")
        strip.save(target)
        truth["oblong"].append(target.relative_to(root).as_posix())
    for source in pick(pool, BROKEN):
        target = train_name((root / source).parent, "broken")
        target.write_bytes((root / source).read_bytes()[:40])
        truth["broken"].append(target.relative_to(root).as_posix())


def _relabel(root: Path, rng: np.random.Generator, pick: Any, pool: list[str], classes: list[str],
             truth: dict[str, Any]) -> None:
    """Move about ``RELABEL_SHARE`` of all images to another class, as train images there."""
    count = round(RELABEL_SHARE * sum(1 for _ in root.rglob("*.png")))
    for source in pick(pool, count):
        origin = source.split("/")[0]
        other = str(rng.choice([c for c in classes if c != origin]))
        target = train_name(root / other, f"from_{origin}")
        shutil.move(root / source, target)
        truth["relabelled"].append({"file": target.relative_to(root).as_posix(), "true": origin, "given": other})


def pairs_of(groups: list[list[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for files in groups for p in combinations(files, 2)}


def rates(found: set[Any], planted: set[Any]) -> dict[str, float | int]:
    hit = len(found & planted)
    return {"planted": len(planted), "found": len(found), "right": hit,
            "precision": round(hit / len(found), 4) if found else 1.0,
            "recall": round(hit / len(planted), 4) if planted else 1.0}


def score_audit(report: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Precision and recall of each check of ``report`` (``audit --json``) against the planted ``truth``."""
    found = report["findings"]
    family_pairs = pairs_of([f["files"] for f in truth["families"]])
    exact_truth = pairs_of([f["files"] for f in truth["families"] if f["exact"]])
    groups = [g["files"] for g in found["exact_duplicates"] + found["near_duplicates"]]
    reported = pairs_of(groups)
    leak_files = {f for g in found["exact_duplicates"] + found["near_duplicates"] if g["kind"] == "leak" for f in g["files"]}
    planted_leak_files = {f for fam in truth["families"] if fam["kind"] == "leak" for f in fam["files"]}
    return {
        "duplicates (any, pairs)": rates(reported, family_pairs),
        "exact duplicates (pairs)": rates(pairs_of([g["files"] for g in found["exact_duplicates"]]), exact_truth),
        "near-duplicates (re-encoded, pairs)": rates(pairs_of([g["files"] for g in found["near_duplicates"]]) - exact_truth,
                                                    family_pairs - exact_truth),
        "leaks (files)": rates(leak_files, planted_leak_files),
        "small images": rates({s["file"] for s in found["small_images"]}, set(truth["small"])),
        "extreme aspect": rates({e["file"] for e in found["extreme_aspect"]}, set(truth["oblong"])),
        "unreadable": rates({u["file"] for u in found["unreadable"]}, set(truth["broken"])),
        "duplicate groups not planted": [files for files in groups if not pairs_of([files]) & family_pairs],
    }


def score_labels(issues: list[dict[str, Any]], truth: dict[str, Any]) -> dict[str, Any]:
    planted = {r["file"] for r in truth["relabelled"]}
    top = [i["file"] for i in issues[:2 * len(planted)]]
    inside = len(planted & set(top))
    flagged = {i["file"] for i in issues}
    return {"planted": len(planted), "flagged": len(issues), "in_top_2n": inside,
            "criterion_met": inside >= len(planted) / 2,
            "precision_all_flagged": round(len(planted & flagged) / len(flagged), 4) if flagged else 1.0,
            "recall_all_flagged": round(len(planted & flagged) / len(planted), 4) if planted else 1.0,
            "suggested_true_class": sum(1 for i in issues for r in truth["relabelled"]
                                        if i["file"] == r["file"] and i["suggested"] == r["true"])}


def automl(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "automl_tl", *argv], env=env, capture_output=True, text=True, check=False)


def run_search(data: Path, work: Path, timeout: float, backbones: str) -> dict[str, Any]:
    """The cross-validated search; returns its study's kept audit and the wall seconds it took."""
    import optuna

    from automl_tl.study_record import DATA_AUDIT_ATTR, IMAGE_SIZE_ATTR

    env = {**os.environ, "AUTOML_TL_STUDIES": str(work / "studies")}
    started = time.perf_counter()
    done = automl(env, "search", str(data), "--study", "audit_bench", "--cv", "5", "--timeout", str(timeout),
                  "--backbones", backbones)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"search failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    study = optuna.load_study(study_name="audit_bench", storage=f"sqlite:///{work / 'studies' / 'audit_bench.db'}")
    warned = done.stderr.count("The data audit of") + done.stdout.count("The data audit of")
    return {"audit": study.user_attrs.get(DATA_AUDIT_ATTR), "image_size": study.user_attrs.get(IMAGE_SIZE_ATTR),
            "search_seconds": round(seconds, 1), "warnings": warned,
            "trials": len([t for t in study.trials if t.state.name == "COMPLETE"])}


def print_table(result: dict[str, Any]) -> None:
    print(f"{'check':34} {'planted':>8} {'found':>7} {'right':>7} {'precision':>10} {'recall':>8}")
    for name, row in result["audit"].items():
        if isinstance(row, dict):
            print(f"{name:34} {row['planted']:8d} {row['found']:7d} {row['right']:7d} {row['precision']:10.3f} {row['recall']:8.3f}")
    print(f"duplicate groups not planted: {len(result['audit']['duplicate groups not planted'])}")
    print(f"small images against the median (no --image-size): {result['small_against_median']}")
    labels = result.get("labels")
    if labels:
        print(f"label errors: {labels['in_top_2n']} of {labels['planted']} planted in the top {2 * labels['planted']} "
              f"({'met' if labels['criterion_met'] else 'NOT met'}); {labels['flagged']} flagged, precision "
              f"{labels['precision_all_flagged']:.3f}, recall {labels['recall_all_flagged']:.3f}")
    print(f"audit alone: {result['audit_command_seconds']}s; inside the search: {result.get('audit_in_search_seconds')}s "
          f"of a {result.get('search_seconds')}s search")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/audit_bench"))
    parser.add_argument("--timeout", type=float, default=240.0, help="the cross-validated search's --timeout")
    parser.add_argument("--backbones", default="mobilenet_v2,efficientnet_lite0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-search", action="store_true", help="only the audit (no label errors, no search time)")
    parser.add_argument("--out", type=Path, help="where the JSON result goes (default: WORK/results.json)")
    args = parser.parse_args()
    if not stamps_available():
        raise SystemExit("tuxpaint-stamps-default is not installed: run `make stamps`.")
    data = args.work / "planted"
    shutil.rmtree(args.work, ignore_errors=True)
    write_stamps_folder(data)
    truth = plant(data, args.seed)
    started = time.perf_counter()
    done = automl(dict(os.environ), "audit", str(data), "--json", "--image-size", "224")
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    report = json.loads(done.stdout)
    median = json.loads(automl(dict(os.environ), "audit", str(data), "--json").stdout)
    result: dict[str, Any] = {"images": report["images"], "audit_command_seconds": round(time.perf_counter() - started, 2),
                              "audit_seconds_inside": report["seconds"], "audit": score_audit(report, truth),
                              "small_against_median": rates({x["file"] for x in median["findings"]["small_images"]},
                                                            set(truth["small"]))}
    if not args.no_search:
        searched = run_search(data, args.work, args.timeout, args.backbones)
        kept = searched.pop("audit") or {}
        result.update(searched, audit_in_search_seconds=kept.get("seconds"),
                      labels=score_labels(kept.get("label_issues", []), truth))
    out = args.out or args.work / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), **result}, indent=2) + "\n")
    print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
