"""One trial's model in PyTorch: phase 1 on cached pooled features, phase 2 from cached block activations."""

from __future__ import annotations

import contextlib
import json
import pickle
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from automl_tl.cache.store import ActivationStore, MemoryStore
from automl_tl.errors import UserError
from automl_tl.training.augment import mixed_rows, view_choice, view_ids, views
from automl_tl.training.block_rates import block_rates
from automl_tl.training.schedule import finetune_steps
from automl_tl.types import BackboneSpec, ImageTable, Phase, TrialConfig

from .cache import PrefixFeatures, channels_last, rows
from .model import BlockStack, Classifier, build_classifier
from .training_state import load_training_state, save_training_state

WEIGHTS_FILE = "weights.pt"
MIRROR_VIEW = 1  # augment.view_ids: the global number of the left-right mirror
LAYOUT_FILE = "layout.json"


def set_batchnorm_inference(module: nn.Module) -> None:
    """Put every BatchNorm inside ``module`` in inference mode (running statistics frozen)."""
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.eval()


def anneal(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The fine-tuning phase's rate: a half cosine from the phase's rate down to zero over
    ``total_steps`` optimiser steps (automl_tl.training.schedule says why)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=0.0)


@contextlib.contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block. A head-only step on cached features is a
    64-row batch through one or two linear layers: more threads only add hand-offs, and on a busy
    machine they wait on each other (docs/decisions.md, "The head-only phase is plain torch", has the figures)."""
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


ParamGroups = list[dict[str, Any]]  # torch's parameter groups: {"params": [...], "lr": rate}


@dataclass
class EpochPlan:
    """One epoch's training rows in order, the augmented view of each, and how far the epoch has come."""

    order: np.ndarray
    choice: np.ndarray
    position: int = 0  # the first row of the next batch

    @property
    def progress(self) -> float:
        """The share of the epoch's rows trained: exactly 1.0 at its end."""
        return 1.0 if self.position >= len(self.order) else self.position / len(self.order)


def adam(params: list[nn.Parameter] | ParamGroups, lr: float) -> torch.optim.Optimizer:
    """Adam as one fused kernel where torch has it for the device: head-only epochs on cached
    features are hundreds of tiny steps, where per-operation overhead is most of the cost. ``params``
    are parameters, or parameter groups that may each set their own ``lr`` (``lr`` is the default)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class TorchTrialSession:
    """Implements automl_tl.types.TrialSession for torch models."""

    def __init__(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable,
                 store: ActivationStore, device: torch.device, prototype: BlockStack | None = None) -> None:
        torch.manual_seed(config.seed)
        self.spec, self.config, self.data, self.device = spec, config, data, device
        self.generator = torch.Generator().manual_seed(config.seed)
        self.prototype = prototype  # the pretrained backbone, built once per process by the adapter
        # A trial that never fine-tunes never changes the backbone: it may use the prototype's blocks as they are.
        share = prototype is not None and not config.finetunes(len(spec.blocks))
        self.model: Classifier = build_classifier(spec, data.num_classes, config, pretrained=spec.pretrained,
                                                  prototype=prototype, share=share)
        # torch's stubs leave out the memory_format keyword that Module.to accepts with a device
        self.model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.n_blocks = len(self.model.backbone.blocks)  # the blocks kept: all, or up to the cut point
        self.frozen = config.frozen_blocks(len(spec.blocks))
        # Pretrained prefixes are the same in every trial; a from-scratch backbone's exist once.
        shared = store if spec.pretrained else MemoryStore()
        self.views = [PrefixFeatures(shared, spec.name, table, self.model.backbone, spec.mean, spec.std, device,
                                     full_depth=self.n_blocks == len(spec.blocks))
                      for table in views(data, config.augment)]
        self.features = self.views[0]  # the original images: validation, test and the only training view without augmentation
        self.view_rng = np.random.default_rng(config.seed)
        self.loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(data.class_weights()).to(device))
        self.labels = torch.from_numpy(data.labels).to(device)
        self.phase: Phase | None = None
        self.backbone_touched = False  # True once any backbone weight has left its pretrained value
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None  # the fine-tuning phase's annealing
        self.anneal_steps = 0  # the scheduler's steps; the rate stays at zero after them
        self._inputs: list[np.ndarray] | None = None
        self._head_inputs: torch.Tensor | None = None
        self._epoch: EpochPlan | None = None  # an epoch that should_stop cut short, continued by the next call

    # -- phases ---------------------------------------------------------------------------
    def set_phase(self, phase: Phase) -> None:
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._head_inputs = None
        self._epoch = None
        if phase is Phase.HEAD:
            # Pooled features are small: keep them on the device, so head-only epochs never leave it.
            self._inputs = [view.pooled_float32() for view in self.views]
            stacked = np.stack(self._inputs) if len(self._inputs) > 1 else self._inputs[0][None]  # (views, N, D)
            with warnings.catch_warnings():  # the shared pooled features are read-only, and only read here
                warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
                self._head_inputs = torch.from_numpy(stacked).to(self.device)
            lr = self.config.lr
            groups: ParamGroups = [{"params": list(self.model.head.parameters())}]
        else:
            self._inputs = [view.after_block(self.frozen) for view in self.views]
            lr = self.config.finetune_lr
            groups = self._finetune_groups()
        for group in groups:
            for p in group["params"]:
                p.requires_grad_(True)
        self.optimizer = adam(groups, lr)
        self.scheduler = None
        if phase is Phase.FINETUNE:
            self.anneal_steps = finetune_steps(self.config, len(self.data.splits["train"]))
            self.scheduler = anneal(self.optimizer, self.anneal_steps)
        self.phase = phase

    def _finetune_groups(self) -> ParamGroups:
        """The head and the post-pool layers at the fine-tuning rate, then one group per trained block at
        its own rate (automl_tl/training/block_rates.py): the annealing scales each from its own rate."""
        top = [*self.model.head.parameters(), *self.model.backbone.post_pool.parameters()]
        groups: ParamGroups = [{"params": top, "lr": self.config.finetune_lr}]
        rates = block_rates(self.config, self.frozen, self.n_blocks)
        for block, rate in zip(self.model.backbone.blocks[self.frozen :], rates, strict=True):
            params = list(block.parameters())
            if params:  # a block of parameter-free layers has nothing to learn
                groups.append({"params": params, "lr": rate})
        return groups

    def _train_mode(self) -> None:
        self.model.eval()
        self.model.head.train()
        if self.phase is Phase.FINETUNE:
            for block in self.model.backbone.blocks[self.frozen :]:
                block.train()
            self.model.backbone.post_pool.train()
            if self.config.unfrozen_bn == "frozen":
                set_batchnorm_inference(self.model.backbone)

    def _forward(self, inputs: torch.Tensor, pristine_path: bool) -> torch.Tensor:
        if pristine_path:
            return self.model.head(inputs)
        return self.model.head(self.model.backbone.forward_from(inputs, self.frozen))

    @property
    def epoch_progress(self) -> float:
        """The share of the current epoch's rows trained; 1.0 when no epoch is under way."""
        return 1.0 if self._epoch is None else self._epoch.progress

    def train_epoch(self, should_stop: Callable[[], bool] | None = None) -> float:
        assert self.optimizer is not None and self._inputs is not None, "set_phase first"
        if self._epoch is None:  # a new epoch: its order and views drawn as they always were
            train_idx = torch.from_numpy(self.data.splits["train"])
            order = train_idx[torch.randperm(len(train_idx), generator=self.generator)].numpy()
            self._epoch = EpochPlan(order, view_choice(len(order), len(self._inputs), self.view_rng))
        self._train_mode()
        head_only = self.phase is Phase.HEAD
        with one_intra_op_thread() if head_only and self.device.type == "cpu" else contextlib.nullcontext():
            total, count = self._epoch_steps(self._epoch, head_only, should_stop)
        if not head_only:
            self.backbone_touched = True
        if self._epoch.progress >= 1.0:
            self._epoch = None
        return total / max(count, 1)

    def _epoch_steps(self, plan: EpochPlan, head_only: bool, should_stop: Callable[[], bool] | None) -> tuple[float, int]:
        """One optimiser step per batch of ``plan`` from where it stands, until its end or until
        ``should_stop()`` says True after a step: the summed loss and the rows it covered."""
        assert self.optimizer is not None and self._inputs is not None
        total, count = 0.0, 0
        order, choice, size = plan.order, plan.choice, self.config.batch_size
        while plan.position < len(order):
            start = plan.position
            batch = order[start : start + size]
            plan.position = start + len(batch)
            if len(batch) < 2 and start > 0:
                continue  # a lone sample breaks BatchNorm in training mode
            if head_only:
                assert self._head_inputs is not None
                rows_index = torch.from_numpy(batch).to(self.device)
                view_index = torch.from_numpy(choice[start : start + len(batch)]).to(self.device)
                x = self._head_inputs[view_index, rows_index]
            else:
                x = channels_last(torch.from_numpy(mixed_rows(self._inputs, batch, choice[start : start + len(batch)])).to(self.device))
            y = self.labels[torch.from_numpy(batch).to(self.device)]
            loss = self.loss_fn(self._forward(x, head_only), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None and self.scheduler.last_epoch < self.anneal_steps:
                self.scheduler.step()  # CosineAnnealingLR would climb again after T_max
            total += float(loss.detach()) * len(batch)
            count += len(batch)
            if len(order) - plan.position == 1:
                plan.position = len(order)  # the lone last sample is skipped: the epoch is over
            if should_stop is not None and should_stop():
                break
        return total, count

    # -- a fitted linear head (automl_tl.types.FittedHeadSession) -------------------------
    def head_training_features(self) -> tuple[np.ndarray, np.ndarray]:
        """The pooled features of every training row in every view, and their labels (head phase only)."""
        assert self.phase is Phase.HEAD and self._inputs is not None, "set_phase(Phase.HEAD) first"
        train = self.data.splits["train"]
        features = np.concatenate([view[train] for view in self._inputs])
        return features, np.tile(self.data.labels[train], len(self._inputs))

    def set_linear_head(self, weights: np.ndarray, bias: np.ndarray) -> None:
        linear = list(self.model.head.children())[-1]  # build_head: dropout, then the linear layer
        assert isinstance(linear, nn.Linear) and linear.weight.shape == (weights.shape[1], weights.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights.T)))
            linear.bias.copy_(torch.from_numpy(bias))

    # -- evaluation -----------------------------------------------------------------------
    def predict_split(self, split: str) -> np.ndarray:
        return self._predict(self.features, split, 0)

    def predict_mirrored(self, split: str) -> np.ndarray | None:
        """``predict_split`` on the left-right mirrored images (``export --flip auto`` decides on it), for a trial
        that trains on the mirror (``augment: hflip``): its mirrored activations are cached already, so this costs
        a head pass, or one validation pass once blocks are fine-tuned. None for any other trial: the mirror's
        prefix pass over every image would cost as much as the trial's own first pass, and ``auto`` leaves the
        flip off for a trial that never saw a mirrored image."""
        ids = view_ids(self.config.augment)
        if MIRROR_VIEW not in ids:
            return None
        position = ids.index(MIRROR_VIEW)
        return self._predict(self.views[position], split, position)

    def _predict(self, features: PrefixFeatures, split: str, view: int | None) -> np.ndarray:
        """Probabilities of ``split`` through ``features`` (a view's cached activations); ``view``: its row in
        the pooled features kept on the device, None when they do not hold it."""
        pristine = not self.backbone_touched
        indices = self.data.splits[split]
        self.model.eval()
        if pristine and self._head_inputs is not None and view is not None:  # pooled features already on the device
            with torch.no_grad():
                logits = self.model.head(self._head_inputs[view][torch.from_numpy(indices).to(self.device)])
                return torch.softmax(logits, dim=1).cpu().numpy()
        source = features.pooled() if pristine else features.after_block(self.frozen)
        outputs = []
        with torch.no_grad():
            step = 2 * features.rows_per_batch()  # 256 rows of small images, fewer of photos
            for start in range(0, len(indices), step):
                inputs = rows(source, indices[start : start + step])
                logits = self._forward(channels_last(inputs.to(self.device)), pristine)
                outputs.append(torch.softmax(logits, dim=1).cpu())
        if not outputs:
            return np.zeros((0, self.data.num_classes), dtype=np.float32)
        return torch.cat(outputs).numpy()

    # -- weights --------------------------------------------------------------------------
    def _trained_state(self) -> dict[str, torch.Tensor]:
        """The weights that differ from the pretrained backbone: head, and fine-tuned blocks."""
        state = {f"head.{k}": v for k, v in self.model.head.state_dict().items()}
        if self.backbone_touched or not self.spec.pretrained:
            for i in range(self.frozen if self.spec.pretrained else 0, self.n_blocks):
                state.update({f"backbone.blocks.{i}.{k}": v for k, v in self.model.backbone.blocks[i].state_dict().items()})
            state.update({f"backbone.post_pool.{k}": v for k, v in self.model.backbone.post_pool.state_dict().items()})
        return state

    def snapshot(self) -> Any:
        state = {name: tensor.detach().clone() for name, tensor in self._trained_state().items()}
        return {"state": state, "touched": self.backbone_touched}

    def restore(self, snapshot: Any) -> None:
        if self.backbone_touched and not snapshot["touched"]:
            # Going back to a head-only snapshot: the blocks must return to their pretrained values.
            pristine = build_classifier(self.spec, self.data.num_classes, self.config, pretrained=self.spec.pretrained,
                                        prototype=self.prototype)
            self.model.backbone.load_state_dict(pristine.backbone.state_dict())
        self.model.load_state_dict(snapshot["state"], strict=False)
        self.backbone_touched = snapshot["touched"]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self._trained_state().items()}
        torch.save(state, directory / WEIGHTS_FILE)
        layout = {"backbone": self.spec.name, "frozen_blocks": self.frozen, "blocks": self.n_blocks,
                  "backbone_blocks": len(self.spec.blocks),
                  "pretrained": self.spec.pretrained, "weights_source": self.spec.weights.source if self.spec.weights else None,
                  "keys": sorted(state)}
        (directory / LAYOUT_FILE).write_text(json.dumps(layout, indent=2))

    def save_state(self, directory: Path, kept: Any) -> None:
        """The state after a whole epoch (``automl_tl.capabilities.ResumableSession``; ``.training_state``)."""
        save_training_state(self, directory, kept)

    def load_state(self, directory: Path) -> Any:
        """Read back what ``save_state`` wrote; the kept snapshot, or None (``ResumableSession``)."""
        return load_training_state(self, directory)

    def block_weights(self, index: int) -> list[np.ndarray]:
        """Copies of block ``index``'s parameters and buffers (``automl_tl.capabilities.InspectableSession``)."""
        return [v.detach().cpu().numpy().copy() for v in self.model.backbone.blocks[index].state_dict().values()]

    def head_weights(self) -> list[np.ndarray]:
        """Copies of the head's parameters (``automl_tl.capabilities.InspectableSession``)."""
        return [v.detach().cpu().numpy().copy() for v in self.model.head.state_dict().values()]

    def close(self) -> None:
        self.optimizer = self.scheduler = None
        self._inputs = self._head_inputs = None


def _brief(exc: BaseException) -> str:
    """An exception's text on one line, cut short (torch's can run to many lines)."""
    text = " ".join(str(exc).split()) or "no detail"
    return text if len(text) <= 200 else text[:197] + "..."


def load_trained(spec: BackboneSpec, directory: Path, num_classes: int, config: TrialConfig,
                 prototype: BlockStack | None = None) -> Classifier:
    """Rebuild a saved trial: the pretrained backbone (a copy of ``prototype`` when given), then the saved
    (fine-tuned) weights over it."""
    model = build_classifier(spec, num_classes, config, pretrained=spec.pretrained, prototype=prototype)
    path = directory / WEIGHTS_FILE
    again = "Export another trial with --trial, or run the trial again."
    if not path.is_file():
        raise UserError(f"{path} is missing: the trial's weights are not in its artifact folder. {again}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"{path} holds objects other than tensors, which the weights-only loader refuses (a trial "
                        f"saves tensors only, so the file was replaced or damaged). {again}") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError ... for a file it cannot read
        raise UserError(f"{path} cannot be read as saved weights ({type(exc).__name__}: {_brief(exc)}); it is "
                        f"damaged or truncated. {again}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError(f"{path} is not a trial's weights (a mapping of names to tensors). {again}")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that differ from the model's
        raise UserError(f"{path} does not fit the trial's model ({_brief(exc)}). {again}") from None
    if unexpected:
        raise UserError(f"{path} has weights this model lacks: {unexpected[:5]}. {again}")
    head_missing = [k for k in missing if k.startswith("head.")]
    if head_missing:
        raise UserError(f"{path} lacks head weights: {head_missing[:5]}. {again}")
    return model.eval()
