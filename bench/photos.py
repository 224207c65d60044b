"""What photo-sized images cost: decoding, the wait for the first trial, peak memory, a trial's phases, input size.

    .venv/bin/python bench/photos.py [--parts decode,start,rss,phases,accuracy] [--quick] [--out bench/photos.json]

Every figure is a ratio against a baseline measured in the same run, on the same images:

* ``decode``: images/s of the decoded-image store's threaded decode (``load_table`` into a fresh
  store) against plain Pillow on one thread (open, convert to RGB, resize to 224 bilinear), and
  against our own ``decode_image`` on one thread, which separates the JPEG draft-mode gain from the
  thread gain. The files are read once first, so every path reads them from the page cache.
* ``start``: seconds from launching ``automl-tl search`` to its first finished trial, cold (fresh
  cache and studies) and on a resume (the same command, one more trial), and whether the resume
  decoded nothing (the decoded-image store's entries are the same files before and after).
* ``rss``: the peak RSS (``wait4``) of a search over a small and a large photo set; the ratio
  large/small should stay within 1.25, since the images live in a memory map, not in the process.
* ``phases``: one mobilenet_v2 trial at 224 px split by phase (pooled features, a head epoch,
  activations at the freeze point, a fine-tune epoch, predicting val), cold and then warm (a second
  session that reads the activation cache).
* ``accuracy``: test accuracy of a search on the tuxpaint stamps with ``--image-size auto`` against
  ``--image-size 48``, in the same ``--timeout``.

Photo sets are generated once by bench/photo_set.py under ``--photo-root`` (resumable; a smaller set
is hard-linked from a larger one when there is one). ``--quick`` uses tiny sizes to check the script.
Writes bench/photos.json (after each part, so an interrupted run keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
import torchvision  # noqa: F401  (before anything that may import tensorflow)
from PIL import Image
from rich.console import Console
from rich.markup import escape
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/photos.py` from the repository root

from automl_tl.data import FolderDataset, load_table  # noqa: E402
from automl_tl.data.image_store import read_hashes, stored_images  # noqa: E402
from automl_tl.data.images import DEFAULT_MAX_PIXELS, decode_image  # noqa: E402
from automl_tl.types import ResizeRule  # noqa: E402
from bench.photo_set import STAMPS_ROOT, stamps_available, write_photo_set, write_stamps_folder  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PARTS = ("decode", "start", "rss", "phases", "accuracy")
SIZE = 224
RSS_TARGET = 1.25  # peak RSS of the large run over the small run's
TRIAL_LINE = re.compile(r"^\s*trial\s+\d+\b")
INPUT_LINE = re.compile(r"^\s*Input\s+\d+\s*px")

FULL = {"decode_photos": 2000, "start_photos": 2000, "phase_photos": 1000, "rss_small": 5000, "rss_large": 50000,
        "accuracy_timeout": 600.0}
QUICK = {"decode_photos": 200, "start_photos": 200, "phase_photos": 200, "rss_small": 300, "rss_large": 1200,
         "accuracy_timeout": 60.0}

console = Console()


# ----------------------------------------------------------------------------------------------------------
# Helpers


def automl_tl_bin() -> str:
    """The ``automl-tl`` entry point next to this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / "automl-tl"
    return str(candidate) if candidate.is_file() else "automl-tl"


def photo_set(root: Path, count: int, seed: int) -> Path:
    """``root/photos_<count>`` with ``count`` photo-shaped JPEGs (seed ``seed``), generated when missing.

    Image ``i`` depends only on the seed and ``i``, so the files of a larger set already under ``root``
    (same seed) are hard-linked instead of drawn again; write_photo_set then draws what is still missing.
    """
    suffix = "" if seed == 0 else f"_seed{seed}"
    dest = root / f"photos_{count}{suffix}"
    marker = dest / ".complete"
    if marker.is_file():
        return dest
    larger = sorted((p for p in root.glob(f"photos_*{suffix}") if (p / ".complete").is_file()
                     and _set_count(p, suffix) > count), key=lambda p: _set_count(p, suffix))
    if larger:
        source = larger[0]
        for sub in sorted(p for p in source.iterdir() if p.is_dir()):
            (dest / sub.name).mkdir(parents=True, exist_ok=True)
            for image in sub.glob("img_*.jpg"):
                target = dest / sub.name / image.name
                if int(image.stem[4:]) < count and not target.exists():
                    try:
                        os.link(image, target)
                    except OSError:
                        shutil.copyfile(image, target)
    started = time.perf_counter()
    made = write_photo_set(dest, count, seed=seed, show_progress=console.is_terminal)
    if made != count:
        raise RuntimeError(f"{dest} has {made} of {count} photos")
    marker.write_text(f"{count}\n")
    console.print(f"photo set {dest}: {count} JPEGs ({time.perf_counter() - started:.1f} s)", highlight=False)
    return dest


def _set_count(path: Path, suffix: str) -> int:
    name = path.name[len("photos_"):]
    name = name[: len(name) - len(suffix)] if suffix else name
    return int(name) if name.isdigit() else -1


def image_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.jpg")) + sorted(folder.glob("*/*.png"))


def tree_bytes(path: Path, keep: Callable[[Path], bool] = lambda p: True) -> dict[str, int]:
    """Apparent and allocated bytes (``du``) of the files under ``path`` for which ``keep`` holds."""
    apparent = allocated = files = 0
    if path.exists():
        for p in path.rglob("*"):
            if p.is_file() and keep(p):
                st = p.stat()
                apparent += st.st_size
                allocated += st.st_blocks * 512
                files += 1
    return {"files": files, "bytes": apparent, "allocated_bytes": allocated}


def cache_sizes(cache: Path) -> dict[str, dict[str, int]]:
    """The decoded-image store (``decoded/``) and the activation cache (everything else) under ``cache``."""
    decoded = cache / "decoded"
    return {"decoded_store": tree_bytes(decoded),
            "activation_cache": tree_bytes(cache, lambda p: decoded not in p.parents)}


def store_entries(cache: Path) -> dict[str, tuple[int, int]]:
    """Each decoded-image store array: name -> (size, mtime_ns); opening an entry touches only its .json."""
    decoded = cache / "decoded"
    if not decoded.is_dir():
        return {}
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in decoded.iterdir() if p.suffix == ".npy"}


def mb(n: float) -> float:
    return round(n / 2**20, 1)


def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, digits)


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}{unit}" if abs(value) < 1 else f"{value:,.2f}{unit}"
    return f"{value}{unit}"


@dataclass
class CliRun:
    """One ``automl-tl`` child: its output lines with the seconds since launch, exit code, wall time, peak RSS."""

    argv: list[str]
    lines: list[tuple[float, str]] = field(default_factory=list)
    returncode: int = 0
    wall_s: float = 0.0
    max_rss_kb: int = 0
    wait4_max_rss_kb: int = 0
    peak_status_kb: dict[str, int] = field(default_factory=dict)  # sampled from /proc/PID/status

    def first(self, pattern: re.Pattern[str]) -> float | None:
        return next((round(t, 2) for t, line in self.lines if pattern.search(line)), None)

    def tail(self, n: int = 30) -> str:
        return "\n".join(line for _, line in self.lines[-n:])

    def check(self) -> CliRun:
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv)} exited with {self.returncode}:\n{self.tail()}")
        return self


def child_env(cache: Path, studies: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"AUTOML_TL_CACHE_DIR": str(cache), "AUTOML_TL_STUDIES": str(studies), "PYTHONUNBUFFERED": "1",
                "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    return env


def run_cli(args: list[str], env: dict[str, str], echo: bool = True) -> CliRun:
    """Run ``automl-tl ARGS``, timestamping each output line (stderr merged), and reap it with ``wait4`` so
    ``ru_maxrss`` is known; the peak RSS is the child's own VmHWM, sampled from /proc (see below)."""
    argv = [automl_tl_bin(), *args]
    run = CliRun(argv)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, text=True,
                            bufsize=1, errors="replace")
    assert proc.stdout is not None
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_status, args=(proc.pid, stop, run.peak_status_kb), daemon=True)
    sampler.start()
    for line in proc.stdout:
        t = time.perf_counter() - started
        line = line.rstrip("\n")
        run.lines.append((t, line))
        if echo and line.strip():
            console.print(f"  [dim]{t:7.1f}s[/] {escape(line)}", highlight=False, soft_wrap=True)
    _, status, usage = os.wait4(proc.pid, 0)
    stop.set()
    sampler.join()
    run.wall_s = round(time.perf_counter() - started, 2)
    run.returncode = os.waitstatus_to_exitcode(status)
    proc.returncode = run.returncode  # reaped here: Popen must not wait for it again
    # ru_maxrss carries over exec: a child forked from this (large) benchmark process starts at its size.
    # VmHWM is the peak of the program's own address space, so it is the figure when it was sampled.
    run.wait4_max_rss_kb = int(usage.ru_maxrss)
    run.max_rss_kb = run.peak_status_kb.get("VmHWM") or run.wait4_max_rss_kb
    return run


def _sample_status(pid: int, stop: threading.Event, peaks: dict[str, int], every_s: float = 0.1) -> None:
    """Keep the largest RssAnon / RssFile / RssShmem / VmRSS of ``pid`` seen (KB): what the peak RSS is made of
    (anonymous memory, or pages of memory-mapped files such as the decoded-image store, which the kernel can drop)."""
    wanted = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
    while not stop.is_set():
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name in wanted:
                kb = int(value.split()[0])
                peaks[name] = max(peaks.get(name, 0), kb)
        stop.wait(every_s)


def search_args(data: Path, study: str, *, backbones: str | None, trials: int | None, epochs: int | None,
                image_size: str | None, timeout: float | None = None, smart_start: bool = False) -> list[str]:
    args = ["search", str(data), "--study", study]
    if backbones:
        args += ["--backbones", backbones]
    if trials is not None:
        args += ["--trials", str(trials)]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    if image_size is not None:
        args += ["--image-size", image_size]
    if timeout is not None:
        args += ["--timeout", f"{timeout:g}"]
    if not smart_start:
        args.append("--no-smart-start")
    return args


def show_json(study: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([automl_tl_bin(), "show", study, "--json"], env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"automl-tl show {study} --json exited with {out.returncode}: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def trial_params(database: Path, study: str) -> list[dict[str, Any]]:
    """Each trial's parameters, in trial order, read from the study's SQLite file."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{database}")
    return [dict(t.params) for t in sorted(loaded.get_trials(deepcopy=False), key=lambda t: t.number)]


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    synchronize()
    started = time.perf_counter()
    value = fn()
    synchronize()
    return round(time.perf_counter() - started, 4), value


def machine() -> dict[str, Any]:
    """Cores, threads, accelerator and library versions."""
    from automl_tl_torch.adapter import configure_cpu_threads

    configure_cpu_threads()
    cuda = torch.cuda.is_available()
    return {
        "cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(), "cuda": cuda, "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def show_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(v) if not isinstance(v, str) else v for v in row))
    console.print(table)


# ----------------------------------------------------------------------------------------------------------
# Parts


def part_decode(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Decoding throughput at 224 px on the same photos: Pillow, decode_image, the store's threaded decode."""
    folder = photo_set(args.photo_root, args.decode_photos, args.seed)
    files = image_files(folder)
    n = len(files)
    for path in files:  # into the page cache, so no path pays for the first read from disk
        path.read_bytes()

    def pillow() -> None:
        for path in files:
            with Image.open(path) as im:
                im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)

    rule = ResizeRule(mode="crop", crop_pct=1.0, interpolation="bilinear")

    def ours_one_thread() -> None:
        for path in files:
            decode_image(path.read_bytes(), SIZE, rule=rule)

    splits = FolderDataset().discover(str(folder))
    store = work / "decode-store"

    def ours_store() -> Any:
        shutil.rmtree(store, ignore_errors=True)
        return load_table(splits, SIZE, show_progress=False, rule=rule, store=store)

    def hashes_then_decode() -> tuple[float, float, float]:
        """load_table's two passes on their own: hashing every file, then the threaded decode into a fresh store."""
        shutil.rmtree(store, ignore_errors=True)
        hash_s, (hashes, unreadable) = timed(lambda: read_hashes(splits.items, False))
        cpu = time.process_time()
        decode_s, _ = timed(lambda: stored_images(splits.items, hashes, unreadable, SIZE, rule, DEFAULT_MAX_PIXELS,
                                                  store, False))
        return hash_s, decode_s, time.process_time() - cpu

    pillow_s, _ = timed(pillow)
    one_s, _ = timed(ours_one_thread)
    hash_s, threaded_s, threaded_cpu_s = hashes_then_decode()
    store_s, table = timed(ours_store)
    decoded = int(table.decoded_now)
    again_s, again = timed(lambda: load_table(splits, SIZE, show_progress=False, rule=rule, store=store))
    del table, again
    shutil.rmtree(store, ignore_errors=True)
    rates = {"pillow_one_thread": round(n / pillow_s, 1), "decode_image_one_thread": round(n / one_s, 1),
             "store_threaded": round(n / store_s, 1), "threaded_decode_only": round(n / threaded_s, 1)}
    result = {
        "photos": n, "image_size": SIZE, "folder": str(folder), "threads": os.cpu_count(),
        "seconds": {"pillow_one_thread": pillow_s, "decode_image_one_thread": one_s, "store_threaded": store_s,
                    "store_hit": again_s, "hashing_only": hash_s, "threaded_decode_only": threaded_s},
        "images_per_s": rates, "store_decoded": decoded,
        "threaded_decode_cores_busy": round(threaded_cpu_s / threaded_s, 2),  # CPU seconds per wall second
        "load_average_1min": round(os.getloadavg()[0], 2),
        "ratio_store_vs_pillow": ratio(rates["store_threaded"], rates["pillow_one_thread"]),
        "ratio_draft_mode": ratio(rates["decode_image_one_thread"], rates["pillow_one_thread"]),
        "ratio_threads": ratio(rates["threaded_decode_only"], rates["decode_image_one_thread"]),
        "ratio_threaded_decode_vs_pillow": ratio(rates["threaded_decode_only"], rates["pillow_one_thread"]),
        "ratio_hit_vs_decode": ratio(store_s, again_s, 1),
        "note": "store_threaded is load_table: hashing every file, then the threaded decode (also timed apart); "
                "Pillow stretches, decode_image crops; ratio_threads = threaded decode only / decode_image one thread",
    }
    show_table(f"Decoding {n} photos at {SIZE} px", ["path", "seconds", "images/s", "x Pillow"], [
        ["Pillow, one thread", pillow_s, rates["pillow_one_thread"], 1.0],
        ["decode_image, one thread (draft mode)", one_s, rates["decode_image_one_thread"], result["ratio_draft_mode"]],
        [f"store: threaded decode only, {os.cpu_count()} threads", threaded_s, rates["threaded_decode_only"],
         result["ratio_threaded_decode_vs_pillow"]],
        ["store: hashing only (read_hashes)", hash_s, round(n / hash_s, 1), ratio(pillow_s, hash_s)],
        [f"store: load_table (hash + decode), {os.cpu_count()} threads", store_s, rates["store_threaded"],
         result["ratio_store_vs_pillow"]],
        ["store hit: load_table again", again_s, round(n / again_s, 1), ratio(pillow_s, again_s)],
    ])
    console.print(f"threaded decode kept {result['threaded_decode_cores_busy']} of {os.cpu_count()} cores busy "
                  f"(load average {result['load_average_1min']})", highlight=False)
    return result


def part_start(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Seconds until the first finished trial, cold and on a resume; the resume must decode nothing."""
    folder = photo_set(args.photo_root, args.start_photos, args.seed)
    cache, studies = work / "start-cache", work / "start-studies"
    for path in (cache, studies):
        shutil.rmtree(path, ignore_errors=True)
    env = child_env(cache, studies)
    common = dict(backbones="mobilenet_v2", epochs=1, image_size=str(SIZE))
    runs: dict[str, dict[str, Any]] = {}
    entries: dict[str, dict[str, tuple[int, int]]] = {}
    for name, trials in (("cold", 1), ("resume", 2)):
        console.print(f"[bold]start[/] {name}: {args.start_photos} photos, trials {trials}")
        run = run_cli(search_args(folder, "photos-start", trials=trials, **common), env).check()
        entries[name] = store_entries(cache)
        runs[name] = {"argv": run.argv[1:], "input_line_s": run.first(INPUT_LINE), "first_trial_s": run.first(TRIAL_LINE),
                      "wall_s": run.wall_s, "max_rss_mb": mb(run.max_rss_kb * 1024), **cache_sizes(cache)}
    cold, resume = runs["cold"], runs["resume"]
    params = trial_params(studies / "photos-start.db", "photos-start")
    decoded_nothing = entries["cold"] == entries["resume"] and bool(entries["cold"])
    result = {
        "photos": args.start_photos, "image_size": SIZE, "runs": runs, "resume_decoded_nothing": decoded_nothing,
        "store_entries": {k: sorted(v) for k, v in entries.items()}, "trial_params": params,
        "resume_repeats_trial_0": len(params) >= 2 and params[0] == params[1],
        "ratio_first_trial_cold_vs_resume": ratio(cold["first_trial_s"], resume["first_trial_s"]),
        "ratio_input_line_cold_vs_resume": ratio(cold["input_line_s"], resume["input_line_s"]),
        "note": "first_trial_s: until the first 'trial N' line (the trial has finished); the resume trains a "
                "different configuration (trial 1); input_line_s: until 'Input N px' (before images are read)",
    }
    show_table(f"Start to first trial ({args.start_photos} photos, {SIZE} px, mobilenet_v2)",
               ["run", "'Input' line s", "first trial s", "wall s", "peak RSS MB"],
               [[name, r["input_line_s"], r["first_trial_s"], r["wall_s"], r["max_rss_mb"]] for name, r in runs.items()])
    console.print(f"cold / resume to first trial: {fmt(result['ratio_first_trial_cold_vs_resume'])}x; "
                  f"resume decoded nothing: {'yes' if decoded_nothing else '[red]NO[/]'}")
    if result["resume_repeats_trial_0"]:
        console.print("[yellow]note[/] the resume's trial 1 has exactly trial 0's parameters (the sampler restarts "
                      "from the same seed)", highlight=False)
    if not args.keep_work:
        shutil.rmtree(cache, ignore_errors=True)
    return result


def part_rss(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Peak RSS of a small_cnn search over a small and a large photo set, each with a fresh cache."""
    runs: dict[str, dict[str, Any]] = {}
    for name, count in (("small", args.rss_small), ("large", args.rss_large)):
        folder = photo_set(args.photo_root, count, args.seed)
        cache, studies = work / f"rss-{name}-cache", work / f"rss-{name}-studies"
        for path in (cache, studies):
            shutil.rmtree(path, ignore_errors=True)
        console.print(f"[bold]rss[/] {name}: {count} photos")
        run = run_cli(search_args(folder, f"photos-rss-{name}", backbones="small_cnn", trials=1, epochs=1,
                                  image_size=str(SIZE)), child_env(cache, studies)).check()
        sizes = cache_sizes(cache)
        best = show_json(f"photos-rss-{name}", child_env(cache, studies)).get("best_trial") or {}
        runs[name] = {"photos": count, "trial_params": best.get("params"), "argv": run.argv[1:], "max_rss_mb": mb(run.max_rss_kb * 1024),
                      "wait4_max_rss_mb": mb(run.wait4_max_rss_kb * 1024), "wall_s": run.wall_s,
                      "sampled_peak_mb": {k: mb(v * 1024) for k, v in run.peak_status_kb.items()},
                      "first_trial_s": run.first(TRIAL_LINE), **sizes}
        if not args.keep_work:
            shutil.rmtree(cache, ignore_errors=True)
    small, large = runs["small"], runs["large"]
    rss_ratio = ratio(large["max_rss_mb"], small["max_rss_mb"], 3)
    result = {"image_size": SIZE, "runs": runs, "ratio_rss_large_vs_small": rss_ratio,
              "ratio_photos_large_vs_small": ratio(large["photos"], small["photos"], 1), "target": RSS_TARGET,
              "within_target": rss_ratio is not None and rss_ratio <= RSS_TARGET,
              "ratio_wall_large_vs_small": ratio(large["wall_s"], small["wall_s"])}
    show_table(f"Peak RSS of a small_cnn search at {SIZE} px", ["run", "photos", "peak RSS MB", "anon MB", "file MB",
                                                                  "wall s", "decoded store MB", "activation cache MB"],
               [[name, r["photos"], r["max_rss_mb"], r["sampled_peak_mb"].get("RssAnon"),
                 r["sampled_peak_mb"].get("RssFile"), r["wall_s"], mb(r["decoded_store"]["allocated_bytes"]),
                 mb(r["activation_cache"]["allocated_bytes"])] for name, r in runs.items()])
    console.print("anon / file MB: the largest anonymous and file-backed (memory maps) RSS sampled every 0.1 s",
                  highlight=False)
    verdict = "within" if result["within_target"] else "[red]over[/]"
    console.print(f"peak RSS large / small: {fmt(rss_ratio)}x for {fmt(result['ratio_photos_large_vs_small'])}x the "
                  f"photos ({verdict} the {RSS_TARGET} target)")
    return result


def part_phases(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One mobilenet_v2 trial split by phase, cold (fresh activation cache) and warm (a second session)."""
    from automl_tl.cache.store import store_from_env
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.types import Phase, TrialConfig

    folder = photo_set(args.photo_root, args.phase_photos, args.seed)
    cache = work / "phases-cache"
    shutil.rmtree(cache, ignore_errors=True)
    previous = os.environ.get("AUTOML_TL_CACHE_DIR")
    os.environ["AUTOML_TL_CACHE_DIR"] = str(cache)
    try:
        plugins = load_plugins()
        adapter = plugins.framework("torch")
        adapter.cache = store_from_env()  # this part's fresh cache, whatever the adapter was built with
        spec = plugins.backbone("mobilenet_v2")
        splits = FolderDataset().discover(str(folder))
        load_s, table = timed(lambda: load_table(splits, SIZE, show_progress=False, rule=spec.resize_rule()))
        config = TrialConfig(backbone="mobilenet_v2", freeze_fraction=0.5, head_units=0, head_dropout=0.0, lr=1e-3,
                             finetune_lr_ratio=0.1, switch_epoch=1, epochs=2, image_size=SIZE)
        rows: dict[str, dict[str, float]] = {}
        for run in ("cold", "warm"):
            console.print(f"[bold]phases[/] {run}")
            times: dict[str, float] = {}
            times["start_trial"], session = timed(lambda: adapter.start_trial(spec, config, table))
            times["set_phase_head"], _ = timed(partial(session.set_phase, Phase.HEAD))
            times["head_epoch"], _ = timed(session.train_epoch)
            times["set_phase_finetune"], _ = timed(partial(session.set_phase, Phase.FINETUNE))
            times["finetune_epoch"], _ = timed(session.train_epoch)
            times["predict_val"], probs = timed(partial(session.predict_split, "val"))
            val = table.splits["val"]
            times["val_accuracy"] = round(float(np.mean(np.argmax(probs, 1) == table.labels[val])), 4)
            session.close()
            rows[run] = times
        steps = ["start_trial", "set_phase_head", "head_epoch", "set_phase_finetune", "finetune_epoch", "predict_val"]
        result = {
            "photos": len(table.labels), "train": int(len(table.splits["train"])), "val": int(len(table.splits["val"])),
            "image_size": SIZE, "device": str(adapter.device),
            "config": {k: getattr(config, k) for k in ("backbone", "freeze_fraction", "head_units", "lr", "finetune_lr_ratio",
                                                        "switch_epoch", "epochs", "image_size", "batch_size")},
            "frozen_blocks": config.frozen_blocks(len(spec.blocks)), "blocks": len(spec.blocks),
            "load_table_s": load_s, "seconds": rows,
            "total_s": {run: round(sum(rows[run][s] for s in steps), 3) for run in rows},
            "ratio_cold_vs_warm": {s: ratio(rows["cold"][s], rows["warm"][s]) for s in steps},
            "activation_cache": tree_bytes(cache, lambda p: (cache / "decoded") not in p.parents),
            "cache_hits": getattr(adapter.cache, "hits", None), "cache_misses": getattr(adapter.cache, "misses", None),
        }
        result["ratio_cold_vs_warm"]["total"] = ratio(result["total_s"]["cold"], result["total_s"]["warm"])
    finally:
        if previous is None:
            os.environ.pop("AUTOML_TL_CACHE_DIR", None)
        else:
            os.environ["AUTOML_TL_CACHE_DIR"] = previous
        if not args.keep_work:
            shutil.rmtree(cache, ignore_errors=True)
    names = {"start_trial": "start_trial (model)", "set_phase_head": "set_phase(HEAD): pooled features",
             "head_epoch": "head epoch", "set_phase_finetune": "set_phase(FINETUNE): activations at the freeze point",
             "finetune_epoch": "fine-tune epoch (trainable suffix)", "predict_val": "predict val"}
    show_table(f"One trial by phase ({result['photos']} photos, {SIZE} px, mobilenet_v2, {result['frozen_blocks']} of "
               f"{result['blocks']} blocks frozen, {result['device']})", ["step", "cold s", "warm s", "cold / warm"],
               [[label, rows["cold"][s], rows["warm"][s], result["ratio_cold_vs_warm"][s]] for s, label in names.items()]
               + [["total", result["total_s"]["cold"], result["total_s"]["warm"], result["ratio_cold_vs_warm"]["total"]]])
    return result


def part_accuracy(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Test accuracy on the stamps: --image-size auto against 48, the same --timeout, each a fresh study."""
    if not stamps_available():
        raise RuntimeError(f"no stamps under {STAMPS_ROOT}: `make stamps` (Debian's tuxpaint-stamps-default)")
    folder = args.photo_root / "stamps"
    counts = write_stamps_folder(folder)
    runs: dict[str, dict[str, Any]] = {}
    for name, size in (("auto", None), ("48", "48")):
        cache, studies = work / f"accuracy-{name}-cache", work / f"accuracy-{name}-studies"
        for path in (cache, studies):
            shutil.rmtree(path, ignore_errors=True)
        env = child_env(cache, studies)
        study = f"stamps-{name}"
        console.print(f"[bold]accuracy[/] --image-size {size or 'auto'} --timeout {args.accuracy_timeout:g}")
        run = run_cli(search_args(folder, study, backbones=None, trials=args.accuracy_trials, epochs=None, image_size=size,
                                  timeout=args.accuracy_timeout, smart_start=True), env).check()
        summary = show_json(study, env)
        best = summary.get("best_trial") or {}
        shown = summary.get("input") or {}
        runs[name] = {"argv": run.argv[1:], "wall_s": run.wall_s, "finished": summary.get("finished"),
                      "image_size": shown.get("image_size"), "why": shown.get("why"),
                      "best_trial": best.get("number"), "val_accuracy": best.get("value"),
                      "test_accuracy": (best.get("user_attrs") or {}).get("test_accuracy"),
                      "best_params": best.get("params")}
        if not args.keep_work:
            shutil.rmtree(cache, ignore_errors=True)
    result = {"images": sum(counts.values()), "classes": len(counts), "timeout_s": args.accuracy_timeout,
              "trials": args.accuracy_trials, "runs": runs,
              "ratio_test_accuracy_auto_vs_48": ratio(runs["auto"]["test_accuracy"], runs["48"]["test_accuracy"], 3)}
    show_table(f"Stamps ({result['images']} images, {result['classes']} classes), --timeout {args.accuracy_timeout:g}",
               ["--image-size", "chosen px", "trials", "best val acc", "test acc", "wall s"],
               [[name, r["image_size"], r["finished"], r["val_accuracy"], r["test_accuracy"], r["wall_s"]]
                for name, r in runs.items()])
    console.print(f"why {runs['auto']['image_size']} px: {runs['auto']['why']}", highlight=False)
    console.print(f"test accuracy auto / 48: {fmt(result['ratio_test_accuracy_auto_vs_48'])}x")
    return result


PART_FUNCTIONS: dict[str, Callable[[argparse.Namespace, Path], dict[str, Any]]] = {
    "decode": part_decode, "start": part_start, "rss": part_rss, "phases": part_phases, "accuracy": part_accuracy}


# ----------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script in a few minutes: "
                        + ", ".join(f"{k.replace('_', '-')} {v:g}" for k, v in QUICK.items()))
    parser.add_argument("--decode-photos", type=int, help=f"photos decoded (default {FULL['decode_photos']})")
    parser.add_argument("--start-photos", type=int, help=f"photos of the start-up runs (default {FULL['start_photos']})")
    parser.add_argument("--phase-photos", type=int, help=f"photos of the phase timing (default {FULL['phase_photos']})")
    parser.add_argument("--rss-small", type=int, help=f"photos of the small RSS run (default {FULL['rss_small']})")
    parser.add_argument("--rss-large", type=int, help=f"photos of the large RSS run (default {FULL['rss_large']})")
    parser.add_argument("--accuracy-timeout", type=float, help=f"--timeout of each stamps search (default {FULL['accuracy_timeout']:g})")
    parser.add_argument("--accuracy-trials", type=int,
                        help="--trials of each stamps search (default: the CLI's 50; a large number makes both "
                             "searches use the whole --timeout)")
    parser.add_argument("--seed", type=int, default=0, help="photo set seed (default %(default)s)")
    parser.add_argument("--photo-root", type=Path, default=Path(tempfile.gettempdir()) / "automl-tl-bench",
                        help="where the photo sets and the stamps are kept between runs (default %(default)s)")
    parser.add_argument("--work", type=Path, help="caches and studies of this run (default: a new temporary folder)")
    parser.add_argument("--keep-work", action="store_true", help="keep the caches and studies (they can be large)")
    parser.add_argument("--out", type=Path, default=BENCH / "photos.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.part_list = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in args.part_list if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if args.rss_large < args.rss_small:
        parser.error("--rss-large must be at least --rss-small")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not stamps_available():  # every part draws on the stamps
        console.print(f"[yellow]skipped[/]: no stamps under {STAMPS_ROOT} to draw photos from; `make stamps` installs "
                      f"Debian's tuxpaint-stamps-default")
        return 0
    args.photo_root.mkdir(parents=True, exist_ok=True)
    made_work = args.work is None
    work = Path(tempfile.mkdtemp(prefix="automl-tl-photos-")) if made_work else args.work
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "parts": args.part_list,
                               "settings": {k: getattr(args, k) for k in (*FULL, "seed")}}
    info = results["machine"]
    console.print(f"[bold]machine[/] {info['cpu_count']} cores, torch {info['torch_threads']} threads, "
                  f"{'CUDA ' + info['device'] if info['cuda'] else 'no CUDA'}; work in {work}", highlight=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    failed = False
    try:
        for part in args.part_list:
            started = time.perf_counter()
            try:
                results[part] = PART_FUNCTIONS[part](args, work)
            except Exception as exc:  # one broken part should not lose the others' figures
                failed = True
                results[part] = {"error": f"{type(exc).__name__}: {exc}"}
                console.print(f"[red]{part} failed[/]: {exc}", highlight=False)
            results[part]["part_s"] = round(time.perf_counter() - started, 1)
            args.out.write_text(json.dumps(results, indent=2, default=str))
    finally:
        if made_work and not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    console.print(f"written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
