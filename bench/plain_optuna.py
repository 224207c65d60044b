"""Baseline (B) for `make bench`: the Optuna loop a user would write by hand.

Every trial builds the model and trains it from the images, every epoch: the frozen blocks run
forward on every batch, there is no activation cache, no pruning and no smart start. Everything
else is what automl-tl searches with: the same search space and sampler seed (TPE), the same
data split and decoded pixels, the same model construction, optimiser, batch size, epoch budget
and channels-last layout, and the same rule that a trial's value is its best epoch (with its
test accuracy measured on that epoch's weights). So the difference measured is the method.
Two exceptions, because a user's loop would not have them:
- B's convolutions are torchvision's stock nn.Conv2d, without automl-tl's explicit padding of
  maps smaller than the kernel (automl_tl_torch/small_input_conv.py; bench/cpu_settings.py
  measures that change on its own);
- B fine-tunes at a constant rate, as the Keras recipe does (compile with Adam(lr), fit),
  where automl-tl anneals the fine-tuning rate along a half cosine (automl_tl/training/schedule.py;
  bench/schedule.py measures that change on its own). With --anneal, B anneals too.

    .venv/bin/python bench/plain_optuna.py DATA --storage sqlite:///b.db --trials 50 [--timeout SEC] [--anneal]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import optuna
import torch
import torchvision  # noqa: F401  (before anything that may import tensorflow)
from torch import nn

from automl_tl.cache.activations import normalise_images
from automl_tl.data import load_table
from automl_tl.plugin.manager import load_plugins
from automl_tl.runtime.memory import resident_mb
from automl_tl.training.engine import effective_config
from automl_tl.training.schedule import finetune_steps
from automl_tl.tuning.space import config_from_trial, search_space
from automl_tl_torch.adapter import configure_cpu_threads
from automl_tl_torch.cache import channels_last
from automl_tl_torch.model import build_classifier
from automl_tl_torch.small_input_conv import restore_stock_convolutions

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), 256):
            x = channels_last(torch.from_numpy(images[start : start + 256]).to(DEVICE))
            correct += int((model(x).argmax(1).cpu().numpy() == labels[start : start + 256]).sum())
    return correct / max(len(labels), 1)


def train_trial(trial: optuna.Trial, plugins, table, space, args) -> float:
    config = config_from_trial(trial, space, epochs=args.epochs, image_size=args.image_size, seed=args.seed)
    spec = plugins.backbone(config.backbone)
    config = effective_config(spec, config)
    torch.manual_seed(config.seed)
    model = build_classifier(spec, table.num_classes, config, pretrained=spec.pretrained).to(DEVICE, memory_format=torch.channels_last)
    restore_stock_convolutions(model)
    blocks = model.backbone.blocks
    frozen = config.frozen_blocks(len(spec.blocks))
    inputs = normalise_images(table.images, spec.mean, spec.std, channels_first=True)
    split = {name: (inputs[idx], table.labels[idx]) for name, idx in table.splits.items()}
    train_x, train_y = split["train"]
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    best_val, best_state = -1.0, None
    optimizer, scheduler, phase = None, None, None
    for epoch in range(config.epochs):
        finetune = config.finetunes(len(spec.blocks)) and epoch >= config.switch_epoch
        if phase != finetune:  # the Keras recipe: setup_to_transfer_learning, then setup_to_fine_tune
            phase = finetune
            for p in model.parameters():
                p.requires_grad_(False)
            trainable = list(model.head.parameters())
            if finetune:
                for block in blocks[frozen:]:
                    trainable += list(block.parameters())
                trainable += list(model.backbone.post_pool.parameters())
            for p in trainable:
                p.requires_grad_(True)
            optimizer = torch.optim.Adam(trainable, lr=config.finetune_lr if finetune else config.lr)
            scheduler = None
            if finetune and args.anneal:
                total = finetune_steps(config, len(train_y))
                scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        model.train()
        for block in blocks[: frozen if finetune else len(blocks)]:
            block.eval()  # frozen blocks keep BatchNorm in inference mode
        if finetune and config.unfrozen_bn == "frozen":
            for module in model.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        order = torch.randperm(len(train_y), generator=generator).numpy()
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2:
                continue
            x = torch.from_numpy(train_x[batch])
            if config.augment == "hflip":  # the same choice as automl-tl's: each image mirrored with chance 1/2
                flip = torch.from_numpy(rng.integers(0, 2, size=len(batch)).astype(bool))
                x[flip] = torch.flip(x[flip], dims=[3])
            x = channels_last(x.to(DEVICE))
            loss = loss_fn(model(x), torch.from_numpy(train_y[batch]).to(DEVICE))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler.last_epoch < total:
                scheduler.step()
        val = accuracy(model, *split["val"])
        if val > best_val:
            best_val, best_state = val, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    trial.set_user_attr("test_accuracy", accuracy(model, *split["test"]))
    trial.set_user_attr("rss_mb", round(resident_mb(), 1))
    return best_val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", default="plain_optuna")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backbones", default="mobilenet_v2,small_cnn")
    parser.add_argument("--anneal", action="store_true", help="anneal the fine-tuning rate as automl-tl does")
    args = parser.parse_args()
    configure_cpu_threads()
    plugins = load_plugins()
    table = load_table(plugins.dataset_for(args.data).discover(args.data), args.image_size, show_progress=False)
    space = search_space(args.backbones.split(","), args.epochs)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=args.study, storage=args.storage, direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=8))
    started = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        value = train_trial(trial, plugins, table, space, args)
        print(f"B trial {trial.number:>3}  val {value:.4f}  {time.perf_counter() - started:7.1f}s", flush=True)
        return value

    study.optimize(objective, n_trials=args.trials, timeout=args.timeout)


if __name__ == "__main__":
    main()
