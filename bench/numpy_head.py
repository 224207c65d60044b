"""Which form of the head-only phase trains fastest on the CPU, and to what accuracy? (docs/decisions.md,
"The head-only phase is plain torch", has the figures and the decision.)

    .venv/bin/python bench/numpy_head.py [--rows 5000] [--epochs 8] [--hidden 0,256] [--repeats 3]

A head-only phase (dropout, linear[, ReLU, dropout, linear], class-weighted cross-entropy, Adam)
trained on the same cached features by each form below, in one run:

  torch          the session's torch loop: 64-row batches, fused Adam, on the session's threads
                 (the baseline of the ratios)
  torch 1 thread the same on one intra-op thread: what the session runs on the CPU
  compiled       the torch loop on one thread with torch.compile of the head and of Adam's step;
                 a first trial compiles, a second (a new head) shows what each later trial pays,
                 and "steady" is the speed once compiled
  full batch     Adam on all rows at once: --full-steps steps at --full-lr-ratio times the rate
  L-BFGS         torch.optim.LBFGS on all rows (strong Wolfe line search), --lbfgs-iterations in
                 all; without dropout, which L-BFGS cannot use (it needs a deterministic loss)

Full batch and L-BFGS change the recipe (steps, rate, dropout), so they are compared by the time
to a similar validation accuracy; their defaults are the fewest steps that got there in a trial run.
Full batch and L-BFGS run on the session's threads and on one.

The features are synthetic but shaped like MobileNetV2's pooled ones: 1280 non-negative columns
(clipped at 6, as ReLU6 is), 10 slightly imbalanced classes, a validation split of a fifth of
--rows. Each time is the best of --repeats, the forms interleaved, and is given as a ratio to
`torch` measured in the same run, next to the final validation accuracy. Writes bench/numpy_head.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from automl_tl_torch.adapter import configure_cpu_threads
from automl_tl_torch.model import build_head
from automl_tl_torch.session import adam, one_intra_op_thread

FEATURES, CLASSES, BATCH, LR, DROPOUT = 1280, 10, 64, 1e-3, 0.2


def cached_features(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and validation features (float32, 0..6) and labels; classes overlap, so accuracy is below 1."""
    rng = np.random.default_rng(seed)
    shares = np.linspace(1.5, 0.5, CLASSES)
    labels = rng.choice(CLASSES, size=rows + rows // 5, p=shares / shares.sum())
    centres = rng.normal(size=(CLASSES, 48))
    latent = centres[labels] + rng.normal(scale=2.2, size=(len(labels), 48))
    mixing = rng.normal(size=(48, FEATURES)) / 6
    features = np.clip(latent @ mixing + 1.0 + rng.normal(scale=0.8, size=(len(labels), FEATURES)), 0, 6)
    features = features.astype(np.float32)
    return features[:rows], labels[:rows], features[rows:], labels[rows:]


def class_weights(labels: np.ndarray) -> np.ndarray:
    counts = np.maximum(np.bincount(labels, minlength=CLASSES), 1).astype(np.float64)
    return (counts.sum() / (CLASSES * counts)).astype(np.float32)


def fresh_head(hidden: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return build_head(FEATURES, hidden, DROPOUT, CLASSES)


def accuracy(head: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    head.eval()
    with torch.no_grad():
        predicted = head(torch.from_numpy(x)).argmax(1).numpy()
    return float((predicted == y).mean())


def minibatch_torch(head: nn.Sequential, data: tuple, epochs: int, forward: Callable | None = None,
                    step: Callable | None = None, optimizer: torch.optim.Optimizer | None = None,
                    on_epoch: Callable[[int], None] | None = None) -> None:
    """The session's torch head-only loop (train_epoch with pooled features already in memory)."""
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    optimizer = optimizer or adam(list(head.parameters()), LR)
    loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(class_weights(data[1])))
    forward, step = forward or head, step or optimizer.step
    generator = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        head.train()
        order = torch.randperm(len(y), generator=generator)
        total = 0.0
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            loss = loss_fn(forward(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            step()
            total += float(loss.detach()) * len(batch)
        if on_epoch is not None:
            on_epoch(epoch)


def full_batch(head: nn.Sequential, data: tuple, steps: int, lr_ratio: float) -> None:
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    optimizer = adam(list(head.parameters()), LR * lr_ratio)
    loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(class_weights(data[1])))
    head.train()
    for _ in range(steps):
        loss = loss_fn(head(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def lbfgs(head: nn.Sequential, data: tuple, iterations: int) -> None:
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=iterations, history_size=20,
                                  line_search_fn="strong_wolfe")
    loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(class_weights(data[1])))
    head.eval()  # no dropout

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(head(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)


def compiled(hidden: int, data: tuple, epochs: int) -> dict[str, float]:
    """torch.compile of the head and of Adam's step; times the compiling first epoch apart."""
    import torch._dynamo

    torch._dynamo.reset()
    result: dict[str, float] = {}
    for trial in ("first", "second"):  # a second trial builds a new head: does it compile again?
        head = fresh_head(hidden)
        optimizer = torch.optim.Adam(head.parameters(), lr=LR)  # fused Adam does not compile on the CPU
        forward = torch.compile(head, dynamic=False)
        step = torch.compile(optimizer.step)
        marks = [time.perf_counter()]
        minibatch_torch(head, data, epochs, forward=forward, step=step, optimizer=optimizer,
                        on_epoch=lambda epoch, marks=marks: marks.append(time.perf_counter()))
        result[f"{trial}_epoch_s"] = marks[1] - marks[0]
        result[f"{trial}_rest_s"] = marks[-1] - marks[1]
        result["val"] = accuracy(head, data[2], data[3])
    return result


def timed(train: Callable[[nn.Sequential], None], hidden: int, data: tuple) -> tuple[float, float]:
    head = fresh_head(hidden)
    start = time.perf_counter()
    train(head)
    seconds = time.perf_counter() - start
    return seconds, accuracy(head, data[2], data[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="training rows (validation: a fifth more)")
    parser.add_argument("--epochs", type=int, default=8, help="8: what --epochs auto gives 5000 rows")
    parser.add_argument("--hidden", default="0,256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-steps", type=int, default=50)
    parser.add_argument("--full-lr-ratio", type=float, default=10.0)
    parser.add_argument("--lbfgs-iterations", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (it needs a C++ compiler)")
    parser.add_argument("--only", default="", help="a comma-separated subset of the eager forms (torch is always run)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "numpy_head.json"))
    args = parser.parse_args()
    configure_cpu_threads()
    threads = torch.get_num_threads()
    data = cached_features(args.rows)

    def one_thread(train: Callable[[nn.Sequential], None]) -> Callable[[nn.Sequential], None]:
        def run(head: nn.Sequential) -> None:
            with one_intra_op_thread():
                train(head)
        return run

    minibatch = partial(minibatch_torch, data=data, epochs=args.epochs)
    whole = partial(full_batch, data=data, steps=args.full_steps, lr_ratio=args.full_lr_ratio)
    quasi_newton = partial(lbfgs, data=data, iterations=args.lbfgs_iterations)
    forms: dict[str, Callable[[nn.Sequential], None]] = {
        "torch": minibatch, "torch 1 thread": one_thread(minibatch),
        "full batch": whole, "full batch 1 thread": one_thread(whole),
        "L-BFGS": quasi_newton, "L-BFGS 1 thread": one_thread(quasi_newton),
    }
    if args.only:
        keep = {"torch", *(name.strip() for name in args.only.split(","))}
        unknown = keep - set(forms)
        if unknown:
            parser.error(f"--only: unknown forms {sorted(unknown)}; choose from {sorted(forms)}")
        forms = {name: train for name, train in forms.items() if name in keep}
    results: dict[str, object] = {"rows": args.rows, "epochs": args.epochs, "features": FEATURES, "classes": CLASSES,
                                  "batch": BATCH, "dropout": DROPOUT, "torch": torch.__version__, "threads": threads,
                                  "cpu": platform.processor() or platform.machine(), "heads": {}}
    print(f"{args.rows} rows x {FEATURES} features, {CLASSES} classes, {args.epochs} epochs of {BATCH}-row batches, "
          f"dropout {DROPOUT}, torch {torch.__version__} on {threads} threads")
    for hidden in [int(h) for h in args.hidden.split(",")]:
        best: dict[str, float] = {}
        vals: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, train in forms.items():
                seconds, val = timed(train, hidden, data)
                best[name] = min(best.get(name, float("inf")), seconds)
                vals[name] = val
        rows = {name: {"seconds": round(best[name], 3), "ratio": round(best[name] / best["torch"], 3),
                       "val": round(vals[name], 4)} for name in forms}
        if not args.no_compile:
            try:
                with one_intra_op_thread():  # as the session runs eager torch on the CPU
                    comp = compiled(hidden, data, args.epochs)
                steady = comp["second_rest_s"] / max(args.epochs - 1, 1) * args.epochs  # all epochs at the compiled speed
                rows["compiled (steady)"] = {"seconds": round(steady, 3), "ratio": round(steady / best["torch"], 3),
                                             "val": round(comp["val"], 4)}
                for trial in ("first", "second"):
                    spent = comp[f"{trial}_epoch_s"] + comp[f"{trial}_rest_s"]
                    rows[f"compiled ({trial} trial)"] = {"seconds": round(spent, 3),
                                                         "ratio": round(spent / best["torch"], 3), "val": round(comp["val"], 4)}
            except Exception as exc:  # no C++ compiler, or an inductor failure on this CPU
                rows["compiled"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        results["heads"][f"hidden {hidden}"] = rows
        print(f"\nhead with {hidden} hidden units" if hidden else "\nlinear head (0 hidden units)")
        for name, row in rows.items():
            if "error" in row:
                print(f"  {name:<24} failed: {row['error']}")
            else:
                print(f"  {name:<24} {row['seconds']:8.3f} s   x{row['ratio']:6.3f} of torch   val {row['val']:.4f}")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
