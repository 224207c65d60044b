"""Which CPU settings pay: thread count, channels-last layout, small-input padding and glibc malloc tuning, measured.

    .venv/bin/python bench/cpu_settings.py [--image-size 48] [--images 1024]

Each variant runs in its own process (allocator variables must be set before start-up) and
times MobileNetV2 fine-tuning steps (blocks 4 and up, batch 64) and inference over the same
images, the best of two passes each; the variants run interleaved for three rounds and
each keeps its best. Throughputs are reported as ratios against torch's defaults measured in the same run.
Writes bench/cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 2
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "10000000000", "MALLOC_TRIM_THRESHOLD_": "10000000000", "MALLOC_TOP_PAD_": "1000000000"}


def worker(threads: int, layout: str, image_size: int, images: int) -> dict[str, float]:
    import torch
    import torchvision  # noqa: F401
    from torch import nn

    from automl_tl.plugin.manager import load_plugins
    from automl_tl_torch.model import build_block_stack

    if threads:
        torch.set_num_threads(threads)
    if os.environ.get("BENCH_MALLOPT") == "1":
        from automl_tl.runtime.memory import tune_allocator

        assert tune_allocator(), "mallopt failed"
    torch.manual_seed(0)
    spec = load_plugins().backbone("mobilenet_v2")
    stack = build_block_stack(spec, pretrained=True)
    if os.environ.get("BENCH_CONV") == "stock":
        from automl_tl_torch.small_input_conv import restore_stock_convolutions

        restore_stock_convolutions(stack)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    stack = stack.to(memory_format=fmt)
    x = torch.randn(images, 3, image_size, image_size)
    with torch.no_grad():
        prefix = stack.run_blocks(x, 0, 4)
    head = nn.Linear(spec.feature_dim, 10)
    params = [p for block in stack.blocks[4:] for p in block.parameters()] + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-4)
    labels = torch.randint(0, 10, (images,))

    def train_pass() -> None:
        stack.train()
        for start in range(0, images, 64):
            batch = prefix[start : start + 64].contiguous(memory_format=fmt)
            loss = nn.functional.cross_entropy(head(stack.forward_from(batch, 4)), labels[start : start + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def infer_pass() -> None:
        stack.eval()
        with torch.no_grad():
            for start in range(0, images, 128):
                stack(x[start : start + 128].contiguous(memory_format=fmt))

    result = {}
    for name, fn in (("train_img_s", train_pass), ("infer_img_s", infer_pass)):
        fn()  # warm-up
        best = float("inf")
        for _ in range(REPEATS):  # the best of several passes: this machine's timings are noisy
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        result[name] = images / best
    result["threads"] = torch.get_num_threads()
    return result


def torch_default_threads() -> int:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all variants; each keeps its best")
    parser.add_argument("--worker", nargs=2, metavar=("THREADS", "LAYOUT"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "cpu.json"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1], args.image_size, args.images)))
        return
    cores = os.cpu_count() or 1
    stock = {"BENCH_CONV": "stock"}  # torchvision's convolutions as shipped, without small-input padding
    variants = {
        "torch defaults (contiguous)": (0, "contiguous", stock),
        "1 thread, contiguous": (1, "contiguous", stock),
        **({f"{cores} threads, contiguous": (cores, "contiguous", stock)} if cores != torch_default_threads() else {}),
        f"{cores} threads, channels-last": (cores, "channels_last", stock),
        f"{cores} threads, channels-last + malloc env vars": (cores, "channels_last", {**stock, **MALLOC}),
        f"{cores} threads, channels-last + small-input padding": (cores, "channels_last", {}),
        f"{cores} threads, channels-last + padding + mallopt (automl-tl)": (cores, "channels_last", {"BENCH_MALLOPT": "1"}),
    }
    results: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):  # variants interleaved, round after round: drift hits them all alike
        for name, (threads, layout, extra_env) in variants.items():
            out = subprocess.run([sys.executable, __file__, "--worker", str(threads), layout, "--image-size",
                                  str(args.image_size), "--images", str(args.images)],
                                 env={**os.environ, **extra_env}, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            best = results.setdefault(name, row)
            for key in ("train_img_s", "infer_img_s"):
                best[key] = max(best[key], row[key])
    base = results["torch defaults (contiguous)"]
    print(f"MobileNetV2 at {args.image_size} px, {args.images} images, best of {args.rounds} rounds; "
          f"ratios against torch's defaults in this run")
    for name, row in results.items():
        row["train_ratio"] = round(row["train_img_s"] / base["train_img_s"], 2)
        row["infer_ratio"] = round(row["infer_img_s"] / base["infer_img_s"], 2)
        print(f"{name:<56} threads {row['threads']}  fine-tune {row['train_img_s']:7.0f} img/s ({row['train_ratio']:.2f}x)  "
              f"inference {row['infer_img_s']:7.0f} img/s ({row['infer_ratio']:.2f}x)")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
