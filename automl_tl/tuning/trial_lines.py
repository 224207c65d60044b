"""What a trial's line in the search's progress display says about it: its recipe, where it was pruned, and
how it was shrunk to fit the time left."""

from __future__ import annotations

from automl_tl.runtime.shown_text import console_text
from automl_tl.training.engine import PruneTrial
from automl_tl.tuning.cost import FitPlan
from automl_tl.types import HEAD_FIT_LBFGS, TrialConfig


def describe_config(config: TrialConfig, n_blocks: int, pretrained: bool = True) -> str:
    """The trial's recipe in a few words: backbone, cut point, head, rate and what it fine-tunes."""
    frozen, depth = config.frozen_blocks(n_blocks), config.depth(n_blocks)
    cut = f", cut at {depth}/{n_blocks}" if depth < n_blocks else ""
    if not pretrained:
        tuning = "from scratch"
    elif config.finetunes(n_blocks):
        tuning = f"fine-tune {depth - frozen}/{depth} blocks from epoch {config.switch_epoch + 1}"
        if config.block_lr_decay != 1.0 and depth - frozen > 1:
            tuning += f", rate x{config.block_lr_decay:g} per block down"
    else:
        tuning = "head only"
    if config.head_fit == HEAD_FIT_LBFGS:
        head = f"head linear fitted by L-BFGS (L2 {config.head_l2:.1g})"
        rate = f", lr {config.lr:.1e}" if pretrained and config.finetunes(n_blocks) else ""
        return f"{config.backbone}{cut}, {head}{rate}, {tuning}"
    return f"{config.backbone}{cut}, head {config.head_units or 'linear'}, lr {config.lr:.1e}, {tuning}"


def shrunk_note(plan: FitPlan | None) -> str:
    """The end of a trial's line when it ran smaller than asked, so that it fit the time left."""
    return f"  [yellow]{console_text(plan.reason)}[/]" if plan is not None and plan.shrunk else ""


def pruned_where(pruned: PruneTrial) -> str:
    """Where a pruned trial stopped: after an epoch, inside one (a check at a share of it), or after a fold."""
    if pruned.fold is not None:
        return f"after fold {pruned.fold + 1}"
    last = pruned.history[-1]
    return f"at {last.fraction:.0%} of epoch {last.epoch + 1}" if last.partial else f"after epoch {last.epoch + 1}"
