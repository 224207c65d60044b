"""One trial's model in Keras: compiled training, phase 1 on cached pooled features, phase 2 from
cached activations at the freeze point through the unfrozen suffix of the backbone."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.cache.activations import PrefixActivations, PrefixIdentity, normalise_images
from automl_tl.cache.store import ActivationStore, MemoryStore, arrays_digest
from automl_tl.errors import UserError, weights_failures_as, weights_unavailable
from automl_tl.training.augment import mixed_rows, view_choice, views
from automl_tl.training.schedule import finetune_steps
from automl_tl.types import BackboneSpec, ImageTable, Phase, TrialConfig

from .block_rates import finetune_adam
from .cut_points import block_layers
from .model import build_head, cut_tensors, full_classifier, keras
from .training_state import load_training_state, save_training_state

WEIGHTS_FILE = "weights.npz"
LAYOUT_FILE = "layout.json"
FINETUNE_BN_MOMENTUM = 0.9  # torch's default (its momentum 0.1 weighs the new batch)


BaseCheck = Callable[[Any], None]  # called with each freshly built pretrained backbone, before it is used

# What keras.utils.get_file and h5py say when weights cannot be downloaded or read.
WEIGHTS_FAILURE_SIGNS = ("URL fetch failure", "Incomplete or corrupted file", "Unable to open file",
                         "Unable to synchronously open", "truncated file")


def weights_digest(model: Any) -> str:
    """A digest of a Keras model's weights, by position, shape, dtype and value. Layer names are left
    out: Keras numbers unnamed layers anew on every build."""
    return arrays_digest((str(i), np.asarray(w.numpy())) for i, w in enumerate(model.weights))


def weights_failure(spec: BackboneSpec, exc: BaseException) -> UserError:
    """The one-paragraph error for pretrained weights that could not be downloaded or read."""
    from .port_weights import keras_models_dir

    return weights_unavailable(spec.name, spec.weights.source if spec.weights else "its factory", exc,
                               downloader="Keras", place=f"{keras_models_dir()}/", place_env="$KERAS_HOME/models/")


def weights_errors(spec: BackboneSpec) -> AbstractContextManager[None]:
    """Building ``spec``'s pretrained model inside this block: weights that fail to arrive become ``weights_failure``."""
    return weights_failures_as(
        lambda exc: spec.pretrained and (isinstance(exc, OSError) or any(sign in str(exc) for sign in WEIGHTS_FAILURE_SIGNS)),
        lambda exc: weights_failure(spec, exc))


def build_base(spec: BackboneSpec, check: BaseCheck | None = None) -> Any:
    """``spec``'s backbone from its factory (pretrained when it has weights), shown to ``check`` first."""
    with weights_errors(spec):
        base = spec.factory(spec.pretrained)
    if check is not None and spec.pretrained:
        check(base)
    return base


class KerasPrefix(PrefixActivations):
    """Frozen-prefix activations of a Keras backbone cut at its block ends (NHWC rows)."""

    def __init__(self, store: ActivationStore, name: str, data: ImageTable, base: Any, cuts: list[Any],
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        identity = PrefixIdentity("keras", name, f"mean={list(mean)};std={list(std)};NHWC")
        super().__init__(store, identity, data, len(cuts))
        self.base, self.cuts, self.mean, self.std = base, cuts, mean, std
        self._segments: dict[tuple[int, int], Any] = {}
        self._base_digest: str | None = None

    def _tensor(self, k: int) -> Any:
        return self.base.input if k == 0 else self.cuts[k - 1]

    def normalise_batch(self, images: np.ndarray) -> np.ndarray:
        return normalise_images(images, self.mean, self.std)

    def block_weights_digest(self, i: int) -> str:
        # Blocks are cuts of one graph: the first link of the chain digests every weight of the
        # backbone, so any changed weight changes every key (and truncation never does).
        if i > 0:
            return ""
        if self._base_digest is None:
            self._base_digest = arrays_digest((f"{i}.{w.path}", np.asarray(w.numpy())) for i, w in enumerate(self.base.weights))
        return self._base_digest

    def post_pool_digest(self, k: int) -> str:
        return ""  # Keras backbones pool with a plain mean

    def run_batch(self, inputs: np.ndarray, start: int, stop: int) -> np.ndarray:
        segment = self._segments.get((start, stop))
        if segment is None:
            segment = self._segments[(start, stop)] = keras.Model(self._tensor(start), self._tensor(stop))
        return np.asarray(segment.predict_on_batch(inputs), dtype=np.float32)

    def pool_batch(self, top: np.ndarray, block: int) -> np.ndarray:
        return top.mean(axis=(1, 2)).astype(np.float32)


class StreamedRows(keras.utils.PyDataset):
    """Rows ``indices`` of cached (or live) activations, batch by batch as Keras asks for them; with
    ``targets``, each batch comes with its labels and class weights."""

    def __init__(self, sources: list[Any], indices: np.ndarray, choice: np.ndarray, batch_size: int) -> None:
        super().__init__()
        self.sources, self.indices, self.choice, self.batch_size = sources, indices, choice, batch_size
        self.labels: np.ndarray | None = None
        self.class_weights: np.ndarray | None = None

    def targets(self, labels: np.ndarray, class_weights: np.ndarray) -> None:
        self.labels, self.class_weights = labels, class_weights

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def __getitem__(self, i: int) -> Any:
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        x = mixed_rows(self.sources, self.indices[rows], self.choice[rows])
        if self.labels is None or self.class_weights is None:
            return x
        y = self.labels[self.indices[rows]]
        return x, y, self.class_weights[y]


@dataclass
class EpochPlan:
    """One epoch's training rows in order, the augmented view of each, and how many are trained."""

    indices: np.ndarray
    choice: np.ndarray
    position: int = 0

    @property
    def progress(self) -> float:
        """The share of the epoch's rows trained: exactly 1.0 at its end."""
        return 1.0 if self.position >= len(self.indices) else self.position / len(self.indices)


class StopWhenAsked(keras.callbacks.Callback):
    """Counts ``fit``'s optimiser steps and asks ``should_stop`` after each; True sets ``stop_training``,
    which Keras 3 checks after every step."""

    def __init__(self, should_stop: Callable[[], bool] | None) -> None:
        super().__init__()
        self.should_stop, self.steps = should_stop, 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        """Count the step; stop ``fit`` after it when ``should_stop`` says so."""
        self.steps += 1
        if self.should_stop is not None and self.should_stop():
            self.model.stop_training = True


class KerasTrialSession:
    """Implements automl_tl.types.TrialSession with compiled Keras training (``fit``)."""

    def __init__(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable, store: ActivationStore,
                 check_base: BaseCheck | None = None) -> None:
        keras.utils.set_random_seed(config.seed)
        self.spec, self.config, self.data = spec, config, data
        self.base = build_base(spec, check_base)
        self.cuts = cut_tensors(self.base, spec.blocks)[: config.depth(len(spec.blocks))]
        self.n_blocks = len(self.cuts)  # the blocks kept: all, or up to the cut point
        self.frozen = config.frozen_blocks(len(spec.blocks))
        shared = store if spec.pretrained else MemoryStore()
        self.views = [KerasPrefix(shared, spec.name, table, self.base, self.cuts, spec.mean, spec.std)
                      for table in views(data, config.augment)]
        self.features = self.views[0]  # the original images: validation, test and the only view without augmentation
        self.view_rng = np.random.default_rng(config.seed)
        self.order_rng = np.random.default_rng(config.seed + 1)  # the order of each epoch's training rows
        self._epoch: EpochPlan | None = None  # an epoch that should_stop cut short, continued by the next call
        self.head = build_head(int(self.cuts[-1].shape[-1]), config.head_units, config.head_dropout, data.num_classes)
        start = self.base.input if self.frozen == 0 else self.cuts[self.frozen - 1]
        self.suffix = keras.Model(start, self.cuts[-1]) if self.frozen < self.n_blocks else None
        self.pristine_suffix = self.suffix.get_weights() if self.suffix is not None else []
        self.class_weight = {i: float(w) for i, w in enumerate(data.class_weights())}
        self.phase: Phase | None = None
        self.backbone_touched = False
        self.trainer: Any = None
        self.finetune_model: Any = None

    def set_phase(self, phase: Phase) -> None:
        self._epoch = None
        if phase is Phase.FINETUNE and self.suffix is not None:
            for layer in self.suffix.layers:
                layer.trainable = True
                if isinstance(layer, keras.layers.BatchNormalization):
                    # keras.applications use momentum 0.99-0.999, tuned for long training: after a few
                    # fine-tuning epochs the moving statistics would still describe the old weights.
                    layer.momentum = FINETUNE_BN_MOMENTUM
                    if self.config.unfrozen_bn == "frozen":
                        layer.trainable = False  # Keras runs non-trainable BatchNorm in inference mode
            inputs = keras.Input(self.features.after_block(self.frozen).shape[1:])
            pooled = keras.layers.GlobalAveragePooling2D()(self.suffix(inputs))
            self.finetune_model = keras.Model(inputs, self.head(pooled))
            self.trainer, lr = self.finetune_model, self.config.finetune_lr
        else:
            self.trainer, lr = self.head, self.config.lr if phase is Phase.HEAD else self.config.finetune_lr
        if phase is Phase.FINETUNE:  # annealed to zero over the phase, as automl_tl.training.schedule defines
            lr = keras.optimizers.schedules.CosineDecay(lr, finetune_steps(self.config, len(self.data.splits["train"])))
        if phase is Phase.FINETUNE and self.suffix is not None:  # each trained block at its own rate (block_rates.py)
            optimizer = finetune_adam(self.base, self.cuts, self.frozen, self.config, lr)
        else:
            optimizer = keras.optimizers.Adam(learning_rate=lr)
        self.trainer.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        self.phase = phase

    def _sources(self, pristine: bool, split: str) -> list[Any]:
        training = split == "train"
        return [view.pooled() if pristine else view.after_block(self.frozen)
                for view in (self.views if training else self.views[:1])]

    def _inputs(self, pristine: bool, split: str) -> Any:
        """Pooled features (small) as one array; activations at the freeze point as batches read while
        Keras predicts, so the split is never held in memory at once; rows in the split's own order, row
        for row with its labels."""
        sources, indices = self._sources(pristine, split), self.data.splits[split]
        choice = view_choice(len(indices), len(sources), self.view_rng)
        if pristine:
            return mixed_rows(sources, indices, choice)
        return StreamedRows(sources, indices, choice, 256)

    @property
    def epoch_progress(self) -> float:
        """The share of the current epoch's rows trained; 1.0 when no epoch is under way."""
        return 1.0 if self._epoch is None else self._epoch.progress

    def train_epoch(self, should_stop: Callable[[], bool] | None = None) -> float:
        """``fit`` over the rest of the epoch's rows, in the epoch's own seeded order (not ``shuffle=True``,
        so that an epoch stopped by ``should_stop`` goes on where it stopped)."""
        assert self.trainer is not None, "set_phase first"
        head_only = self.trainer is self.head
        sources, size = self._sources(head_only, "train"), self.config.batch_size
        if self._epoch is None:
            train = self.data.splits["train"]
            choice = view_choice(len(train), len(sources), self.view_rng)
            order = self.order_rng.permutation(len(train))
            self._epoch = EpochPlan(train[order], choice[order])
        plan = self._epoch
        indices, choice = plan.indices[plan.position :], plan.choice[plan.position :]
        counter = StopWhenAsked(should_stop)
        if head_only:  # pooled features: one small array
            history = self.trainer.fit(mixed_rows(sources, indices, choice), self.data.labels[indices], epochs=1,
                                       batch_size=size, shuffle=False, class_weight=self.class_weight, verbose=0,
                                       callbacks=[counter])
        else:  # activations at the freeze point, read batch by batch
            rows = StreamedRows(sources, indices, choice, size)
            weights = np.array([self.class_weight[int(c)] for c in range(self.data.num_classes)], np.float32)
            rows.targets(self.data.labels, weights)
            # shuffle=False: fit would otherwise shuffle a PyDataset's batches too, and a continued epoch would
            # draw a different order from the one it began with
            history = self.trainer.fit(rows, epochs=1, shuffle=False, verbose=0, callbacks=[counter])
            self.backbone_touched = True
        plan.position = min(len(plan.indices), plan.position + counter.steps * size)
        if plan.progress >= 1.0:
            self._epoch = None
        return float(history.history["loss"][-1])

    def head_training_features(self) -> tuple[np.ndarray, np.ndarray]:
        """The pooled features of every training row in every view, and their labels (head phase only)."""
        train = self.data.splits["train"]
        sources = self._sources(True, "train")
        features = np.concatenate([np.asarray(source[train], dtype=np.float32) for source in sources])
        return features, np.tile(self.data.labels[train], len(sources))

    def set_linear_head(self, weights: np.ndarray, bias: np.ndarray) -> None:
        self.head.layers[-1].set_weights([weights, bias])

    def predict_split(self, split: str) -> np.ndarray:
        pristine = not self.backbone_touched
        inputs = self._inputs(pristine, split)
        if len(inputs) == 0:
            return np.zeros((0, self.data.num_classes), np.float32)
        model = self.head if pristine else self.finetune_model
        if isinstance(inputs, StreamedRows):
            return np.asarray(model.predict(inputs, verbose=0), dtype=np.float32)
        return np.asarray(model.predict(inputs, batch_size=256, verbose=0), dtype=np.float32)

    def snapshot(self) -> Any:
        suffix = self.suffix.get_weights() if (self.suffix is not None and self.backbone_touched) else None
        return {"head": self.head.get_weights(), "suffix": suffix, "touched": self.backbone_touched}

    def restore(self, snapshot: Any) -> None:
        self.head.set_weights(snapshot["head"])
        if self.suffix is not None:
            self.suffix.set_weights(snapshot["suffix"] if snapshot["touched"] else self.pristine_suffix)
        self.backbone_touched = snapshot["touched"]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"head/{i}": w for i, w in enumerate(self.head.get_weights())}
        if self.suffix is not None and (self.backbone_touched or not self.spec.pretrained):
            layers = self.suffix.layers if self.spec.pretrained else self.base.layers
            for layer in layers:
                arrays.update({f"layer/{layer.name}/{i}": w for i, w in enumerate(layer.get_weights())})
        np.savez(directory / WEIGHTS_FILE, **arrays)
        (directory / LAYOUT_FILE).write_text(json.dumps({"backbone": self.spec.name, "frozen_blocks": self.frozen,
                                                         "blocks": self.n_blocks, "backbone_blocks": len(self.spec.blocks),
                                                         "pretrained": self.spec.pretrained}))

    def save_state(self, directory: Path, kept: Any) -> None:
        """The state after a whole epoch (``automl_tl.capabilities.ResumableSession``; ``.training_state``)."""
        save_training_state(self, directory, kept)

    def load_state(self, directory: Path) -> Any:
        """Read back what ``save_state`` wrote; the kept snapshot, or None (``ResumableSession``)."""
        return load_training_state(self, directory)

    def block_weights(self, index: int) -> list[np.ndarray]:
        """Copies of the weights of block ``index``'s layers (``automl_tl.capabilities.InspectableSession``)."""
        return [np.array(w) for layer in block_layers(self.base, self.spec.blocks, index) for w in layer.get_weights()]

    def head_weights(self) -> list[np.ndarray]:
        """Copies of the head's weights (``automl_tl.capabilities.InspectableSession``)."""
        return [np.array(w) for w in self.head.get_weights()]

    def close(self) -> None:
        self.trainer = self.finetune_model = None


def load_trained(spec: BackboneSpec, directory: Path, num_classes: int, config: TrialConfig,
                 check_base: BaseCheck | None = None) -> Any:
    """Rebuild a saved trial: the pretrained backbone, the saved layers over it, the head."""
    base = build_base(spec, check_base)
    top = cut_tensors(base, spec.blocks)[config.depth(len(spec.blocks)) - 1]
    head = build_head(int(top.shape[-1]), config.head_units, config.head_dropout, num_classes)
    path = directory / WEIGHTS_FILE
    again = "Export another trial with --trial, or run the trial again."
    if not path.is_file():
        raise UserError(f"{path} is missing: the trial's weights are not in its artifact folder. {again}")
    try:
        with np.load(path, allow_pickle=False) as saved:
            head.set_weights([saved[f"head/{i}"] for i in range(len(head.get_weights()))])
            layers: dict[str, list[tuple[int, np.ndarray]]] = {}
            for key in saved.files:
                if key.startswith("layer/"):
                    _, name, index = key.split("/")
                    layers.setdefault(name, []).append((int(index), saved[key]))
        for name, weights in layers.items():
            base.get_layer(name).set_weights([w for _, w in sorted(weights, key=lambda item: item[0])])
    except Exception as exc:  # numpy and keras raise BadZipFile, ValueError, KeyError ... for a file they cannot use
        text = " ".join(str(exc).split())[:200] or "no detail"
        raise UserError(f"{path} cannot be read as the trial's saved weights ({type(exc).__name__}: {text}); it is "
                        f"damaged, truncated, holds pickled objects (refused) or belongs to another model. {again}") from None
    return full_classifier(base, head, top)
