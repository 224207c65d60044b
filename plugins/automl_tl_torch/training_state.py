"""A torch trial's training state between epochs, written and read back for a resumed trial
(``automl_tl.capabilities.ResumableSession``): the trained weights, the optimiser's and the annealing schedule's
state, the random generators' state, and the weights the engine keeps. One file of tensors and plain values,
read with ``torch.load(weights_only=True)``: a file that holds anything else is refused, never run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from automl_tl.runtime.atomic_files import replace_file

STATE_FILE = "training_state.pt"
# ``session`` below is a ``TorchTrialSession`` (typed ``Any``: this module is the session's, and must not import it back).


def _on_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}


def restore_cuda_rng(saved: list[torch.Tensor] | None) -> None:
    """Set the CUDA generators (one per device) to ``saved``. Where the state was saved without CUDA, or CUDA is
    gone now, there is nothing to set: the trial goes on with its weights and optimiser, its later random draws
    not those of the uninterrupted run."""
    if saved is None or not torch.cuda.is_available():
        return
    for device, generator_state in enumerate(saved[: torch.cuda.device_count()]):
        torch.cuda.set_rng_state(generator_state, device)


def save_training_state(session: Any, directory: Path, kept: Any) -> None:
    """Write ``session``'s state after a whole epoch into ``directory``; ``kept``: a ``snapshot()`` or None."""
    state = {
        # the live weights, not a ``snapshot()``: that clones them on the device only for them to be copied again
        "weights": _on_cpu(session._trained_state()),
        "touched": bool(session.backbone_touched),
        "optimizer": session.optimizer.state_dict() if session.optimizer is not None else None,
        "scheduler": session.scheduler.state_dict() if session.scheduler is not None else None,
        "generator": session.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        # Dropout and random augmentation on a GPU draw from the CUDA generators, one per device
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "view_rng": json.dumps(session.view_rng.bit_generator.state),
        "kept": None if kept is None else {"weights": _on_cpu(kept["state"]), "touched": bool(kept["touched"])},
    }
    replace_file(directory / STATE_FILE, lambda partial: torch.save(state, partial))


def load_training_state(session: Any, directory: Path) -> Any:
    """Bring ``session`` (set to the saved phase) to the state in ``directory``; return the kept snapshot, or None
    when the kept weights are the ones just loaded."""
    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    session.restore({"state": state["weights"], "touched": state["touched"]})
    if (state["optimizer"] is None) != (session.optimizer is None):
        raise ValueError("the saved optimiser state does not fit the session's phase")
    if session.optimizer is not None:
        session.optimizer.load_state_dict(state["optimizer"])
    if session.scheduler is not None and state["scheduler"] is not None:
        session.scheduler.load_state_dict(state["scheduler"])
    session.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    restore_cuda_rng(state.get("cuda_rng"))
    session.view_rng.bit_generator.state = json.loads(state["view_rng"])
    kept = state["kept"]
    return None if kept is None else {"state": kept["weights"], "touched": kept["touched"]}
