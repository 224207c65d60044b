"""A Keras trial's training state between epochs, written and read back for a resumed trial
(``automl_tl.capabilities.ResumableSession``): the head's and the fine-tuned layers' weights, the optimiser's
variables (its step count and Adam's moments), the epoch-order and view generators and the Dropout layers' random
streams, and the weights the engine keeps. Arrays go in one ``.npz`` read with ``allow_pickle=False``, the rest in
JSON: nothing read runs code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.runtime.atomic_files import replace_file, replace_text

ARRAYS_FILE = "training_state.npz"
FACTS_FILE = "training_state.json"
# ``session`` below is a ``KerasTrialSession`` (typed ``Any``: this module is the session's, and must not import it back).


def _named(prefix: str, arrays: list[Any] | None) -> dict[str, np.ndarray]:
    return {f"{prefix}/{i}": np.asarray(a) for i, a in enumerate(arrays or [])}


def _listed(saved: Any, prefix: str) -> list[np.ndarray]:
    count = sum(1 for key in saved.files if key.startswith(prefix + "/"))
    return [saved[f"{prefix}/{i}"] for i in range(count)]


def _layers(model: Any) -> list[Any]:
    """Every layer inside ``model``, nested models' layers included, in a fixed order."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(_layers(layer))
    return found


def seed_generators(session: Any) -> list[Any]:
    """The random streams of the trial's layers (Dropout's): their state is not among the weights."""
    models = [session.head] + ([session.suffix] if session.suffix is not None else [])
    return [layer.seed_generator for model in models for layer in _layers(model) if hasattr(layer, "seed_generator")]


def save_training_state(session: Any, directory: Path, kept: Any) -> None:
    """Write ``session``'s state after a whole epoch into ``directory``; ``kept``: a ``snapshot()`` or None."""
    now = session.snapshot()
    optimizer = getattr(session.trainer, "optimizer", None)
    built = optimizer is not None and bool(optimizer.built)
    variables = [v.numpy() for v in optimizer.variables] if optimizer is not None and built else None
    arrays: dict[str, Any] = {**_named("head", now["head"]), **_named("suffix", now["suffix"]),
                              **_named("optimizer", variables), **_named("seeds", [g.state.numpy() for g in seed_generators(session)])}
    if kept is not None:
        arrays.update({**_named("kept_head", kept["head"]), **_named("kept_suffix", kept["suffix"])})
    facts = {"touched": bool(now["touched"]), "optimizer_built": built, "view_rng": session.view_rng.bit_generator.state,
             "order_rng": session.order_rng.bit_generator.state,
             "kept": None if kept is None else {"touched": bool(kept["touched"]), "suffix": kept["suffix"] is not None}}

    def write(partial: Path) -> None:
        with partial.open("wb") as handle:
            np.savez(handle, **arrays)

    replace_file(directory / ARRAYS_FILE, write)
    replace_text(directory / FACTS_FILE, json.dumps(facts))


def load_training_state(session: Any, directory: Path) -> Any:
    """Bring ``session`` (set to the saved phase) to the state in ``directory``; return the kept snapshot, or None
    when the kept weights are the ones just loaded."""
    facts = json.loads((directory / FACTS_FILE).read_text(encoding="utf-8"))
    with np.load(directory / ARRAYS_FILE, allow_pickle=False) as saved:
        suffix = _listed(saved, "suffix")
        session.restore({"head": _listed(saved, "head"), "suffix": suffix or None, "touched": facts["touched"]})
        if facts["optimizer_built"]:
            optimizer = session.trainer.optimizer
            optimizer.build(session.trainer.trainable_variables)
            values = _listed(saved, "optimizer")
            if len(values) != len(optimizer.variables):
                raise ValueError(f"{len(values)} saved optimiser variables for {len(optimizer.variables)}")
            for variable, value in zip(optimizer.variables, values, strict=True):
                variable.assign(value)
        for generator, state in zip(seed_generators(session), _listed(saved, "seeds"), strict=True):
            generator.state.assign(state)
        kept = facts["kept"]
        kept_snapshot = None if kept is None else {
            "head": _listed(saved, "kept_head"), "suffix": _listed(saved, "kept_suffix") if kept["suffix"] else None,
            "touched": kept["touched"]}
    session.view_rng.bit_generator.state = facts["view_rng"]
    session.order_rng.bit_generator.state = facts["order_rng"]
    return kept_snapshot
