"""Framework-neutral data types shared by the core and every plugin."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from automl_tl.session_types import EpochResult, FittedHeadSession, Phase, TrialSession

__all__ = [
    "HEAD_FITS", "HEAD_FIT_ADAM", "HEAD_FIT_LBFGS", "IMAGENET_MEAN", "IMAGENET_STD", "INTERPOLATIONS", "RESIZE_MODES", "SPLITS",
    "BackboneSpec", "DataSplits", "DatasetAdapter", "EpochResult", "ExportedModel", "FittedHeadSession", "FrameworkAdapter",
    "ImageItem",
    "ImageTable", "Phase", "Preprocessing", "ResizeRule", "TrialConfig", "TrialSession", "WeightsInfo", "rule_from_dict",
]

SPLITS = ("train", "val", "test")
"""The split names, in order: training, validation (chooses between trials), test (judges the chosen model)."""


RESIZE_MODES = ("crop", "pad", "stretch")
"""How an image becomes a square: keep the aspect ratio and centre-crop (default), keep it and pad, or stretch."""

INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class ResizeRule:
    """How a decoded image of any shape becomes an ``image_size`` square, as pretrained configs state it.

    ``crop``: scale the shorter side to ``image_size / crop_pct`` and cut the centre square (torchvision's
    evaluation transform is crop with crop_pct 0.875: 256 then 224). ``pad``: scale the longer side to
    ``image_size`` and pad the rest with white. ``stretch``: scale each side to ``image_size``.
    """

    mode: str = "crop"
    crop_pct: float = 1.0
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}, not {self.mode!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not {self.interpolation!r}")
        if not 0.5 <= float(self.crop_pct) <= 1.0:
            raise ValueError(f"crop_pct must be between 0.5 and 1, not {self.crop_pct!r}")

    def to_dict(self) -> dict[str, Any]:
        """The rule as preprocessing.json and a study record it (``rule_from_dict`` reads it back)."""
        return {"resize": self.mode, "crop_pct": float(self.crop_pct), "interpolation": self.interpolation}

    def token(self) -> str:
        """A short exact name, part of every decoded-image and activation key."""
        return f"{self.mode}:{float(self.crop_pct):g}:{self.interpolation}"

    def describe(self) -> str:
        if self.mode == "crop":
            share = "" if self.crop_pct == 1.0 else f" of {self.crop_pct:g} of it"
            return f"shorter side resized ({self.interpolation}), centre square{share} kept"
        if self.mode == "pad":
            return f"longer side resized ({self.interpolation}), padded with white to a square"
        return f"stretched to a square ({self.interpolation})"


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become model input: decode, orient by EXIF, lay transparency over white, make a square
    by ``rule``, scale to [0, 1], then (x - mean) / std."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rule: ResizeRule = field(default_factory=ResizeRule)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            **self.rule.to_dict(),
            "resize_rule": self.rule.describe(),
            "exif_orientation": True,
            "transparency": "over white",
            "color": "RGB",
            "scale": "pixel / 255",
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        return cls(int(data["image_size"]), tuple(data["mean"]), tuple(data["std"]), rule_from_dict(data))


def rule_from_dict(data: Mapping[str, Any]) -> ResizeRule:
    """The resize rule a preprocessing.json (or a study's record) states; files written before rules
    existed said "bilinear, to a square", which is ``stretch``."""
    mode = data.get("resize", "stretch")
    if mode not in RESIZE_MODES:
        mode = "stretch"
    return ResizeRule(mode, float(data.get("crop_pct", 1.0)), str(data.get("interpolation", "bilinear")))


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeightsInfo:
    """Where a backbone's pretrained weights come from and whether they are here."""

    source: str
    is_available: Callable[[], bool]
    where: str = ""  # the local file that makes them available offline, if any


@dataclass(frozen=True)
class BackboneSpec:
    """A pretrained (or from-scratch) network that a framework adapter can build.

    ``blocks`` is the ordered list of block names, from input to output. The freeze
    fraction is a share of this list, so it means the same thing for every backbone.
    ``factory(pretrained)`` returns the framework's model object; ``options`` carries
    framework-specific details (for torch, the module paths to run after pooling).
    """

    name: str
    framework: str
    factory: Callable[[bool], Any]
    blocks: tuple[str, ...]
    feature_dim: int
    default_image_size: int = 224  # the native input size of the pretrained weights
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    weights: WeightsInfo | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    # How the weights were evaluated (timm's pretrained config): centre crop share and interpolation.
    # None: no preference (a from-scratch network), the study's other backbones decide.
    crop_pct: float | None = 0.875
    interpolation: str = "bilinear"

    @property
    def pretrained(self) -> bool:
        return self.weights is not None

    def weights_available(self) -> bool:
        return self.weights is not None and bool(self.weights.is_available())

    def preprocessing(self, image_size: int, rule: ResizeRule | None = None) -> Preprocessing:
        """The model's input: ``rule`` (the study's; by default this backbone's own) at ``image_size``."""
        return Preprocessing(image_size, self.mean, self.std, rule or self.resize_rule())

    def resize_rule(self, mode: str = "crop") -> ResizeRule:
        """This backbone's own rule for ``mode``; crop_pct applies to ``crop`` only."""
        crop = self.crop_pct if (mode == "crop" and self.crop_pct is not None) else 1.0
        return ResizeRule(mode, crop, self.interpolation)


HEAD_FIT_ADAM = "adam"
HEAD_FIT_LBFGS = "lbfgs"
HEAD_FITS = (HEAD_FIT_ADAM, HEAD_FIT_LBFGS)


@dataclass(frozen=True)
class TrialConfig:
    """One point of the search space, as the engine and the adapters see it."""

    backbone: str
    freeze_fraction: float
    head_units: int
    head_dropout: float
    lr: float
    finetune_lr_ratio: float
    switch_epoch: int
    epochs: int
    image_size: int
    unfrozen_bn: str = "train"  # "train" or "frozen": BatchNorm mode in unfrozen blocks
    batch_size: int = 64
    seed: int = 0
    cut_fraction: float = 1.0  # the head reads pooled features after this share of the blocks
    augment: str = "none"  # fixed training views: "none" or "hflip" (see automl_tl/training/augment.py)
    # Per-block fine-tuning rates (Caffe's lr_mult, fastai's discriminative rates, timm's layer decay): the
    # top trained block learns at ``finetune_lr``, each block below it at ``block_lr_decay`` times the one above.
    block_lr_decay: float = 1.0
    # How the head-only phase trains a linear head: "adam" (epochs of minibatch steps at ``lr``) or "lbfgs"
    # (multinomial logistic regression solved to convergence on the cached features, L2 strength ``head_l2``;
    # automl_tl/training/linear_head.py). An "lbfgs" head phase is one fit, counted as one epoch.
    head_fit: str = "adam"
    head_l2: float = 1e-2  # smart start's too: the middle of the range where fitted heads scored the same (bench/head_fit.py)

    def depth(self, n_blocks: int) -> int:
        """How many leading blocks the model keeps (the truncation cut point, at least one)."""
        return max(1, min(n_blocks, int(round(self.cut_fraction * n_blocks))))

    def frozen_blocks(self, n_blocks: int) -> int:
        """How many leading blocks stay frozen while fine-tuning: a share of the blocks kept."""
        depth = self.depth(n_blocks)
        return max(0, min(depth, int(round(self.freeze_fraction * depth))))

    def finetunes(self, n_blocks: int) -> bool:
        return self.switch_epoch < self.epochs and self.frozen_blocks(n_blocks) < self.depth(n_blocks)

    def phase_at(self, epoch: int) -> Phase:
        return Phase.HEAD if epoch < self.switch_epoch else Phase.FINETUNE

    def from_scratch(self) -> TrialConfig:
        """The same trial for a backbone without pretrained weights: nothing is frozen and every
        block learns from the first epoch at the trial's learning rate (no transfer phase)."""
        from dataclasses import replace

        return replace(self, freeze_fraction=0.0, switch_epoch=0, finetune_lr_ratio=1.0, cut_fraction=1.0, block_lr_decay=1.0,
                       head_fit=HEAD_FIT_ADAM)

    def with_fitted_head(self, n_blocks: int) -> TrialConfig:
        """What an ``lbfgs`` trial runs: a linear head, fitted once (one head epoch), then the fine-tuning
        epochs it was asked for, if any. Any other trial is returned as it is."""
        from dataclasses import replace

        if self.head_fit != HEAD_FIT_LBFGS:
            return self
        tune_epochs = self.epochs - self.switch_epoch if self.finetunes(n_blocks) else 0
        return replace(self, head_units=0, head_dropout=0.0, switch_epoch=1, epochs=1 + tune_epochs)

    @property
    def finetune_lr(self) -> float:
        return self.lr * self.finetune_lr_ratio


@dataclass(frozen=True)
class ImageItem:
    """One labelled image, as a dataset adapter finds it.

    ``path``: the image file, resolved (absolute). ``relpath``: its path relative to the data root in
    POSIX form (``"cat/001.jpg"``); it names the image in messages and reports, and ``stable_split``
    hashes it, so it must be the same on every machine. ``label``: the index of its class in
    ``DataSplits.class_names``, from 0.
    """

    path: Path
    relpath: str
    label: int


@dataclass(frozen=True)
class DataSplits:
    """Everything a dataset adapter found: classes, items and a stable split; what ``discover`` returns.

    ``root``: the folder the items' ``relpath`` is relative to. ``source``: a short description for
    messages (``"folder /data/pets"``). ``class_names``: the classes, in label order (at least two).
    ``items``: the ``ImageItem`` s. ``split``: parallel to ``items``, each ``"train"``, ``"val"`` or
    ``"test"``. Build it with ``automl_tl.data.split.make_splits``, which applies ``stable_split`` and
    refuses classes too small to split. The core checks what an adapter returns (two classes or more,
    non-empty train and val splits, labels in range) before it reads an image.
    """

    root: Path
    source: str
    class_names: tuple[str, ...]
    items: tuple[ImageItem, ...]
    split: tuple[str, ...]  # parallel to items: "train", "val" or "test"

    def indices(self, name: str) -> list[int]:
        """The positions in ``items`` of the split ``name`` (``"train"``, ``"val"`` or ``"test"``)."""
        return [i for i, s in enumerate(self.split) if s == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and class: ``counts()["train"]["cat"]``."""
        table = {s: {c: 0 for c in self.class_names} for s in SPLITS}
        for item, s in zip(self.items, self.split, strict=True):
            table[s][self.class_names[item.label]] += 1
        return table


@dataclass
class ImageTable:
    """Decoded, resized images with labels and split indices. ``images`` is usually a read-only memory
    map of the decoded-image store: read it in slices of rows (``np.array(images[start:stop])``), never
    all at once."""

    images: np.ndarray  # uint8, (N, H, W, 3)
    labels: np.ndarray  # int64, (N,)
    class_names: tuple[str, ...]
    relpaths: tuple[str, ...]
    splits: dict[str, np.ndarray]  # split name -> indices into images
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)
    manifest_hash: str = ""
    content_hashes: tuple[str, ...] = ()  # sha1 of each image file's bytes, parallel to images
    decoded_now: int = 0  # images this load decoded; 0 when they all came from the decoded-image store

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_weights(self) -> np.ndarray:
        """Inverse-frequency weights from the training split (all ones when balanced)."""
        counts = np.bincount(self.labels[self.splits["train"]], minlength=self.num_classes).astype(np.float64)
        counts = np.maximum(counts, 1.0)
        weights = counts.sum() / (self.num_classes * counts)
        return weights.astype(np.float32)


@runtime_checkable
class ExportedModel(Protocol):
    """A model loaded from an export folder: images in, class probabilities out."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """``batch`` is float32 (N, H, W, 3) in [0, 1]; returns probabilities (N, classes)."""


@runtime_checkable
class FrameworkAdapter(Protocol):
    """What a framework plugin (torch, keras, ...) provides to the core.

    ``export_formats`` lists the formats ``export`` writes, the first being the one suggested to users.
    ``safe_formats`` is the part of it that loads without running code stored in the file (ONNX in
    onnxruntime, ``.keras`` in safe mode). An export folder may come from anyone: the core opens the
    other formats (TorchScript, SavedModel) only when the user vouches for the folder (``--trust-model``).

    The optional capabilities (``backbone_digest``, ``inference_latency``, ``block_seconds``, ``device``,
    ``prefix_activations``, ``combine``, ``flip_average``, ``quantize`` with ``quantize_formats``) are
    Protocols of their own in ``automl_tl.capabilities``; the core asks ``isinstance(adapter, ...)``.
    """

    name: str
    export_formats: tuple[str, ...]
    safe_formats: tuple[str, ...]

    def is_installed(self) -> bool:
        """True when the framework can be imported here."""

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> TrialSession:
        """Build backbone plus head for ``config`` and return a session ready for phase 1."""

    def block_features(self, spec: BackboneSpec, data: ImageTable, block: int) -> np.ndarray:
        """Globally pooled activations after the first ``block`` blocks of the untrained backbone,
        (N, channels), for every image in ``data``. ``block == len(spec.blocks)`` gives the
        backbone's features, (N, spec.feature_dim): the classic bottleneck features."""

    def load(self, spec: BackboneSpec, directory: Path, num_classes: int, config: TrialConfig) -> Any:
        """Rebuild a trained model saved by ``TrialSession.save``. A saved file that is missing, damaged
        or refused by the safe loader raises ``UserError`` naming the file."""

    def predict_loaded(self, model: Any, preprocessing: Preprocessing, batch: np.ndarray) -> np.ndarray:
        """Probabilities from a model returned by ``load``; ``batch`` as in ``ExportedModel``."""

    def export(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path) -> str:
        """Write ``model`` in ``fmt`` into ``out_dir``; return the model file's name."""

    def load_exported(self, out_dir: Path, fmt: str, model_file: str, trusted: bool = False) -> ExportedModel:
        """Open the model ``model_file`` (a name the core checked stays inside ``out_dir``) of an export
        folder written by ``export``. A format outside ``safe_formats`` raises ``UserError`` unless
        ``trusted`` (the user vouched for the folder, or the export is checking what it just wrote).
        A damaged file may raise the runtime's own error: the core reports it, naming the file."""


@runtime_checkable
class DatasetAdapter(Protocol):
    """Turns a user's DATA argument into DataSplits."""

    name: str

    def claims(self, location: str) -> bool:
        """True when this adapter knows how to read ``location``."""

    def discover(self, location: str) -> DataSplits:
        """Find classes and images under ``location``; raise UserError on bad input."""

