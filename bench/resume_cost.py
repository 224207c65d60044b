"""What saving a trial's training state after its epochs costs (automl_tl/training/resume.py): trial time with
the per-epoch save and without it.

    .venv/bin/python bench/resume_cost.py [--repeats 6] [--per-class 40] [--epochs 4] [--every-epoch] [--out FILE]

On Debian's tuxpaint stamps (``make stamps``), MobileNetV2 (torch, its ImageNet weights) at 224 px, a trial that
fits its head then fine-tunes the top half of the backbone for the remaining epochs. A first run fills the
activation cache (not counted). Then each repeat runs the same trial once with a ``TrialResume`` (the state saved
as the search saves it) and once without, in alternating order (with/without, then without/with) so that load from
other processes on the machine cancels out. Two figures: the ratio of the median trial times with/without (end
to end, with the machine's noise), and the seconds spent inside ``TrialResume.save`` over the median time
without (the save's own cost, without that noise), and the process's CPU seconds with/without. The saves follow
``TrialResume.save_if_due`` (spaced so that they cost about ``SAVE_SHARE`` of the training; never after the last
epoch); ``--every-epoch`` saves after every epoch but the last instead. Writes them to ``--out``.
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

import torchvision  # noqa: F401  (before anything that may import tensorflow)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/resume_cost.py` from the root

from automl_tl.cache.store import DiskStore  # noqa: E402
from automl_tl.data import FolderDataset, load_table  # noqa: E402
from automl_tl.plugin.manager import load_plugins  # noqa: E402
from automl_tl.training import resume as resume_module  # noqa: E402
from automl_tl.training.engine import run_trial  # noqa: E402
from automl_tl.tuning.space import config_from_params  # noqa: E402
from automl_tl_torch.adapter import configure_cpu_threads  # noqa: E402
from bench.photo_set import stamps_available, write_stamps_folder  # noqa: E402

SIZE = 224
TARGET = 0.03  # what the per-epoch save may add to a trial


class SaveClock:
    """The seconds and count of ``TrialResume.save`` calls that wrote a state."""

    def __init__(self) -> None:
        self.seconds, self.saves = 0.0, 0
        self._save = resume_module.TrialResume.save

    def install(self) -> None:
        clock = self

        def timed(resume: Any, session: Any, kept: Any) -> None:
            started = time.perf_counter()
            manifest = resume.folder / resume_module.MANIFEST
            before = manifest.stat().st_mtime_ns if manifest.exists() else None
            clock._save(resume, session, kept)
            after = manifest.stat().st_mtime_ns if manifest.exists() else None
            clock.seconds += time.perf_counter() - started
            clock.saves += int(after is not None and after != before)

        resume_module.TrialResume.save = timed  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--every-epoch", action="store_true", help="save after every epoch (SAVE_SHARE infinite), "
                        "the rule before saves were spaced by their cost")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "resume_cost.json"))
    args = parser.parse_args()
    if args.every_epoch:
        resume_module.SAVE_SHARE = float("inf")
    if not stamps_available():
        sys.exit("The tuxpaint stamps are not installed: run `make stamps` (Debian's tuxpaint-stamps-default).")
    configure_cpu_threads()
    work = Path(tempfile.mkdtemp(prefix="automl-tl-resume-cost-"))
    try:
        os.environ["AUTOML_TL_CACHE_DIR"] = str(work / "cache")
        counts = write_stamps_folder(work / "stamps", per_class=args.per_class)
        plugins = load_plugins()
        adapter, spec = plugins.framework("torch"), plugins.backbone("mobilenet_v2")
        adapter.cache = DiskStore(work / "cache", 2**36)
        table = load_table(FolderDataset().discover(str(work / "stamps")), SIZE, show_progress=False)
        config = config_from_params({"backbone": spec.name, "head_units": 256, "head_dropout": 0.2, "lr": 1e-3,
                                     "finetune_lr_ratio": 0.3, "freeze_fraction": 0.5, "switch_epoch": 1},
                                    epochs=args.epochs, image_size=SIZE, seed=0)
        print(f"{sum(counts.values())} stamps in {len(counts)} classes, {SIZE} px, mobilenet_v2, {args.epochs} epochs "
              f"(head, then the top half fine-tuned); filling the cache ...")
        run_trial(adapter, spec, config, table)
        clock = SaveClock()
        clock.install()
        times: dict[str, list[float]] = {"with": [], "without": []}
        cpu: dict[str, list[float]] = {"with": [], "without": []}  # process CPU seconds: less moved by other processes
        for repeat in range(args.repeats):
            for mode in (("with", "without") if repeat % 2 == 0 else ("without", "with")):
                state = resume_module.TrialResume(work / f"state-{repeat}", {"bench": repeat}) if mode == "with" else None
                started, cpu_started = time.perf_counter(), time.process_time()
                run_trial(adapter, spec, config, table, resume=state)
                times[mode].append(time.perf_counter() - started)
                cpu[mode].append(time.process_time() - cpu_started)
                if state is not None:
                    state.discard()
                print(f"repeat {repeat + 1} {mode:>7} saving: {times[mode][-1]:.2f}s ({cpu[mode][-1]:.2f} CPU s)")
        with_s, without_s = statistics.median(times["with"]), statistics.median(times["without"])
        save_share = clock.seconds / args.repeats / without_s
        result = {"images": sum(counts.values()), "classes": len(counts), "image_size": SIZE, "epochs": args.epochs,
                  "backbone": "mobilenet_v2", "times_s": times, "median_with_s": round(with_s, 3),
                  "median_without_s": round(without_s, 3), "ratio": round(with_s / without_s, 4),
                  "cpu_ratio": round(statistics.median(cpu["with"]) / statistics.median(cpu["without"]), 4), "cpu_s": cpu,
                  "save_s_per_trial": round(clock.seconds / args.repeats, 3), "saves_per_trial": clock.saves / args.repeats,
                  "save_share": round(save_share, 4), "target": TARGET,
                  "rule": "every epoch" if args.every_epoch else f"save_if_due, SAVE_SHARE={resume_module.SAVE_SHARE}"}
        print(json.dumps({k: v for k, v in result.items() if k not in ("times_s", "cpu_s")}, indent=1))
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
