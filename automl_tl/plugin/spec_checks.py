"""What plugins register is checked here: backbone specs when they are registered, the adapters' types,
and, through ``find_blocks`` and ``check_feature_dim``, the parts of a spec that only the built model
can confirm (framework adapters call these two where they build a backbone).

Every problem is a ``PluginContractError`` (a ``UserError``; ``BackboneSpecError``, its subclass, for a
backbone spec): one paragraph naming the plugin or the backbone, the field at fault and what to write
instead."""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Real
from typing import Any, TypeVar

from automl_tl.errors import PluginContractError
from automl_tl.types import INTERPOLATIONS, BackboneSpec, DatasetAdapter, FrameworkAdapter, WeightsInfo

__all__ = [
    "BackboneSpecError",
    "PluginContractError",
    "check_backbone_spec",
    "check_dataset_adapter",
    "check_feature_dim",
    "check_framework_adapter",
    "find_blocks",
]

T = TypeVar("T")



class BackboneSpecError(PluginContractError):
    """A backbone spec that cannot work as declared: at registration, or where the adapter builds it
    (``find_blocks``, ``check_feature_dim``). Catch ``PluginContractError`` for every kind of plugin."""


def _where(owner: str, name: object) -> str:
    return f"Plugin {owner!r} registered backbone {name!r}"


def _three_numbers(value: object) -> list[float] | None:
    """``value`` as three finite numbers, or None when it is anything else (a scalar, a string, two numbers)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        return None
    if not all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v)) for v in value):
        return None
    return [float(v) for v in value]


def _normalisation_problems(spec: BackboneSpec) -> list[str]:
    problems = []
    example = "mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)"
    mean, std = _three_numbers(spec.mean), _three_numbers(spec.std)
    for field, value, numbers in (("mean", spec.mean, mean), ("std", spec.std, std)):
        if numbers is None:
            problems.append(f"{field}={value!r}, which is not three finite numbers: give one per RGB channel, "
                            f"on pixels scaled to 0..1, e.g. {example}")
    if mean is not None and not all(0.0 <= m <= 1.0 for m in mean):
        problems.append(f"mean={tuple(mean)!r}: the mean is on pixels scaled to 0..1 (pixel / 255), so each value "
                        f"lies between 0 and 1; a model that expects 0..255 input uses mean=(0, 0, 0), "
                        f"std=(1/255, 1/255, 1/255)")
    if std is not None and not all(s > 0 for s in std):
        problems.append(f"std={tuple(std)!r}: every std must be above 0 (the input is divided by it)")
    return problems


def _block_problems(blocks: object) -> list[str]:
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Sequence):
        return [f"blocks={blocks!r}: blocks is a tuple of block names, from input to output, e.g. "
                f"blocks=('layer1', 'layer2', 'layer3', 'layer4')"]
    if not blocks:
        return ["no blocks: list at least one block name, from input to output (the freeze and cut points fall "
                "between blocks)"]
    bad = [b for b in blocks if not isinstance(b, str) or not b.strip()]
    if bad:
        return [f"blocks holding {', '.join(repr(b) for b in bad[:3])}: every block is a non-empty name"]
    twice = [name for name, count in Counter(blocks).items() if count > 1]
    if twice:
        return [f"the block name(s) {', '.join(repr(b) for b in twice)} more than once: each block ends at a "
                f"different place, so list each name once, in order from input to output"]
    return []


def _other_problems(spec: BackboneSpec) -> list[str]:
    problems = []
    if not isinstance(spec.framework, str) or not spec.framework:
        problems.append(f"framework={spec.framework!r}: name the framework adapter that builds it, e.g. "
                        f"framework='torch' or framework='keras'")
    if not callable(spec.factory):
        problems.append(f"factory={spec.factory!r}, which cannot be called: give a function factory(pretrained) "
                        f"that returns the framework's model")
    if isinstance(spec.feature_dim, bool) or not isinstance(spec.feature_dim, int) or spec.feature_dim <= 0:
        problems.append(f"feature_dim={spec.feature_dim!r}: give the width of the pooled features after the last "
                        f"block, a positive whole number (e.g. 512 for resnet18)")
    if spec.weights is not None and (not isinstance(spec.weights, WeightsInfo) or not callable(spec.weights.is_available)):
        problems.append(f"weights={spec.weights!r}: give a WeightsInfo(source, is_available, where) whose "
                        f"is_available() says whether the weights are here, or None for a backbone trained from scratch")
    if not isinstance(spec.options, Mapping):
        problems.append(f"options={spec.options!r}: options is a mapping (a dict) of framework-specific details")
    if spec.crop_pct is not None and (not isinstance(spec.crop_pct, Real) or not 0.5 <= float(spec.crop_pct) <= 1.0):
        problems.append(f"crop_pct={spec.crop_pct!r}: give the share of the resized image that its centre crop "
                        f"keeps, between 0.5 and 1 (torchvision's is 0.875), or None for no preference")
    if spec.interpolation not in INTERPOLATIONS:
        problems.append(f"interpolation={spec.interpolation!r}: use one of {', '.join(INTERPOLATIONS)}")
    return problems


def check_backbone_spec(spec: object, owner: str) -> BackboneSpec:
    """``spec`` if it is a usable ``BackboneSpec``; else a ``BackboneSpecError`` naming the plugin
    ``owner``, the backbone and every field at fault, with what to write instead.

    Checked without building the model: the name, framework and factory, the block list (a tuple of
    distinct non-empty names), ``feature_dim``, ``mean``/``std`` (three numbers each, on 0..1 pixels),
    ``weights``, ``options``, ``crop_pct`` and ``interpolation``. That the block names name parts of the
    model, and that ``feature_dim`` is its real width, is checked where the adapter builds it
    (``find_blocks``, ``check_feature_dim``)."""
    if not isinstance(spec, BackboneSpec):
        raise BackboneSpecError(
            f"Plugin {owner!r} called register() in register_backbones with {type(spec).__name__} {spec!r:.80}; "
            f"register_backbones registers automl_tl.types.BackboneSpec objects, one per call."
        )
    name = spec.name
    if not isinstance(name, str) or not name.strip():
        raise BackboneSpecError(f"Plugin {owner!r} registered a backbone with name={name!r}. Give it a short "
                                f"unique name such as 'resnet18': it is what --backbones selects.")
    problems = []
    if name != name.strip() or "," in name or not name.isprintable():
        problems.append("a name with a comma, surrounding spaces or a control character: --backbones takes a "
                        "comma-separated list of names, so keep to letters, digits, underscores, hyphens and dots")
    problems += _block_problems(spec.blocks) + _other_problems(spec) + _normalisation_problems(spec)
    if problems:
        listed = "; ".join(problems)
        raise BackboneSpecError(f"{_where(owner, name)} with {listed}. Fix its BackboneSpec in that plugin.")
    return spec


def _contract_members(protocol: type) -> set[str]:
    """The members a class must define to implement ``protocol``: its annotated attributes and its public
    methods and properties (``name`` included)."""
    return set(protocol.__dict__.get("__annotations__", {})) | {
        m for m, value in vars(protocol).items() if (callable(value) or isinstance(value, property)) and not m.startswith("_")}


def _adapter_problems(adapter: object, protocol: type, kind: str) -> list[str]:
    name = adapter.name if hasattr(adapter, "name") else None
    problems = [] if isinstance(name, str) and name.strip() else [f"name={name!r} (give it a short unique name)"]
    missing = sorted(m for m in _contract_members(protocol) - {"name"} if not hasattr(adapter, m))
    if missing:
        problems.append(f"no {', '.join(missing)} (a {kind} implements automl_tl.types.{protocol.__name__})")
    return problems


def _checked_adapter(adapter: object, owner: str, protocol: type, kind: str, hook: str) -> None:
    problems = _adapter_problems(adapter, protocol, kind)
    if problems:
        raise PluginContractError(f"Plugin {owner!r} registered a {kind} ({type(adapter).__name__}) with "
                                f"{'; '.join(problems)}. Fix the object its {hook} registers.")


def check_framework_adapter(adapter: object, owner: str) -> FrameworkAdapter:
    """``adapter`` if it has a name and every member of ``FrameworkAdapter``; else a ``PluginContractError``."""
    _checked_adapter(adapter, owner, FrameworkAdapter, "framework adapter", "register_frameworks")
    return adapter  # type: ignore[return-value]


def check_dataset_adapter(adapter: object, owner: str) -> DatasetAdapter:
    """``adapter`` if it has a name, ``claims`` and ``discover``; else a ``PluginContractError``."""
    _checked_adapter(adapter, owner, DatasetAdapter, "dataset adapter", "register_datasets")
    return adapter  # type: ignore[return-value]


def _unknown_parts(block: str, known: set[str]) -> list[str]:
    """The names inside ``block`` that the model lacks: a block may join names with ``+`` (torch) and a
    name may carry a prefix such as ``input:`` (Keras)."""
    parts = [part.rsplit(":", 1)[-1] for part in block.split("+") if part]
    return [part for part in parts if part not in known]


def find_blocks(blocks: Sequence[str], find: Callable[[str], T], model_names: Callable[[], Iterable[str]],
                backbone: str = "") -> list[T]:
    """Each block of ``blocks`` located in the built model by ``find``, in order.

    A block that ``find`` cannot locate (it raises) becomes a ``BackboneSpecError`` naming the backbone
    (when given), the block, and the model's names closest to it from ``model_names()`` (for torch,
    the module paths of ``named_modules()``; for Keras, the layer names), instead of a ``KeyError`` or
    ``AttributeError`` traceback from deep inside the adapter."""
    found = []
    for block in blocks:
        try:
            found.append(find(block))
        except Exception as exc:
            known = set(model_names())
            unknown = _unknown_parts(block, known) or [block]
            hints = []
            for part in unknown:
                close = difflib.get_close_matches(part, sorted(known), n=3, cutoff=0.6)
                if close:
                    hints.append(f"for {part!r} did you mean {', '.join(repr(c) for c in close)}?")
            of = f" of backbone {backbone!r}" if backbone else ""
            hint = f" ({'; '.join(hints)})" if hints else ""
            raise BackboneSpecError(
                f"The block {block!r}{of} names nothing in the model its factory built "
                f"({type(exc).__name__}: {str(exc)[:160]}){hint}. Each of BackboneSpec.blocks, in order from input to "
                f"output, and each module path in its options must name a part of that model; fix them in the "
                f"plugin that registers it (`automl-tl plugins` shows which)."
            ) from None
    return found


_confirmed: dict[tuple[Any, ...], Callable[[bool], Any]] = {}  # specs whose feature_dim was measured, with their factory


def check_feature_dim(spec: BackboneSpec, measure: Callable[[], int]) -> None:
    """Raise a ``BackboneSpecError`` when ``spec.feature_dim`` is not the width ``measure()`` finds: the
    pooled features after the last block of the built model. A model that cannot be measured (``measure``
    raises, e.g. at the adapter's probe size) is left to the trial itself. A spec is measured once per
    process: the adapters build the same backbone many times (prototype, block features, each trial)."""
    key = (spec.name, spec.feature_dim, tuple(spec.blocks), id(spec.factory))
    if key in _confirmed:
        return
    try:
        width = int(measure())
    except Exception:
        return
    if width == spec.feature_dim:
        _confirmed[key] = spec.factory  # holding the factory keeps its id from being reused
    else:
        raise BackboneSpecError(
            f"Backbone {spec.name!r} declares feature_dim={spec.feature_dim}, but its built model gives {width} "
            f"pooled features after its last block ({spec.blocks[-1]!r}). Set feature_dim={width} in its "
            f"BackboneSpec, in the plugin that registers it (`automl-tl plugins` shows which)."
        )
