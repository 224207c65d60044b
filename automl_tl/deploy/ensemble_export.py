"""An ensemble of trials as one ``ExportSource``: its members rebuilt, combined by their adapter into one graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna

from automl_tl.capabilities import CombinesTrials
from automl_tl.deploy.export import ExportReport, ExportSource, check_format, load_trial_model, trial_source, write_export
from automl_tl.deploy.flip import judge_flip
from automl_tl.deploy.quantize import QuantizeRequest
from automl_tl.ensemble_types import EnsembleMember
from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.storage.artifacts import load_parity_images, study_key
from automl_tl.study_record import DIGEST_FIELD
from automl_tl.tuning.ensemble import LIBRARY_SIZE, Ensemble, candidates, select_ensemble, weighted_mean
from automl_tl.types import BackboneSpec, TrialConfig

SELECTION = ("greedy forward selection with replacement on validation (under cross-validation: out-of-fold) "
             "probabilities (Caruana et al. 2004); auto keeps it only when it beats the best single trial on "
             "cross-fitted halves of those rows")


def pristine_blocks(spec: BackboneSpec, config: TrialConfig, metrics: dict[str, Any]) -> int:
    """The leading blocks a saved trial left at their pretrained weights: every kept block when its best
    epoch was a head-only one, the frozen ones when it was fine-tuned, none for a from-scratch backbone."""
    if not spec.pretrained:
        return 0
    n_blocks = len(spec.blocks)
    if metrics.get("best_phase") == "head" or not config.finetunes(n_blocks):
        return config.depth(n_blocks)
    return config.frozen_blocks(n_blocks)


def ensemble_source(plugins: Plugins, study: optuna.Study, artifacts: Path, ensemble: Ensemble) -> ExportSource:
    """Rebuild each member (nothing is retrained) and let their adapter combine them into one model."""
    members: list[EnsembleMember] = []
    metas: list[dict[str, Any]] = []
    adapter = None
    for number, weight in zip(ensemble.members, ensemble.weights):
        trial = load_trial_model(plugins, study, artifacts, number)
        if adapter is not None and trial.adapter is not adapter:
            raise UserError(f"Trial {number} was trained with {trial.adapter.name}, the ensemble's other members with "
                            f"{adapter.name}; one exported graph cannot hold both. Choose members of one framework.")
        adapter = trial.adapter
        members.append(EnsembleMember(number, trial.spec, trial.config, trial.model, int(weight),
                                      pristine_blocks(trial.spec, trial.config, trial.meta["metrics"]), trial.preprocessing))
        metas.append(trial.meta)
    assert adapter is not None, "an ensemble has at least one member"
    best, best_meta = members[0], metas[0]
    for member, meta in zip(members[1:], metas[1:]):
        if list(meta["class_names"]) != list(best_meta["class_names"]):
            raise UserError(f"Trial {member.trial} knows other classes than trial {best.trial}; they cannot be averaged.")
        if member.preprocessing.image_size != best.preprocessing.image_size or member.preprocessing.rule != best.preprocessing.rule:
            raise UserError(f"Trial {member.trial} takes other input ({member.preprocessing.image_size} px, "
                            f"{member.preprocessing.rule.describe()}) than trial {best.trial}; they cannot share one graph.")
    if not isinstance(adapter, CombinesTrials):
        raise UserError(f"The {adapter.name} adapter cannot combine trials into one model (it has no `combine`). "
                        f"Export a single trial instead (leave out --ensemble).")
    model = adapter.combine(members, best.preprocessing)

    def members_mean(batch: np.ndarray) -> np.ndarray:
        """The reference the ensemble's graph must match: each member's own model, weighted and averaged."""
        return weighted_mean([adapter.predict_loaded(m.model, m.preprocessing, batch) for m in members],
                             [m.weight for m in members]).astype(np.float32)

    metadata: dict[str, Any] = {
        "study": study.study_name,
        "trial": best.trial,
        "params": best_meta["params"],
        "framework": adapter.name,
        "backbone": best.spec.name,
        "backbones": sorted({m.spec.name for m in members}),
        "pretrained": all(m.spec.pretrained for m in members),
        DIGEST_FIELD: best_meta.get(DIGEST_FIELD),
        "val_accuracy": ensemble.val_accuracy,
        "test_accuracy": ensemble.test_accuracy,
        "metrics": {"val_accuracy": ensemble.val_accuracy, "test_accuracy": ensemble.test_accuracy},
        "ensemble": {
            **ensemble.to_dict(),
            "selection": SELECTION,
            "member_details": [
                {"trial": m.trial, "weight": m.weight, "backbone": m.spec.name, "params": meta["params"],
                 "shared_pretrained_blocks": m.pristine_blocks, DIGEST_FIELD: meta.get(DIGEST_FIELD),
                 "val_accuracy": meta["metrics"]["val_accuracy"]}
                for m, meta in zip(members, metas)],
        },
        "automl_tl_version": best_meta.get("automl_tl_version"),
    }
    return ExportSource(adapter, model, best.preprocessing, list(best_meta["class_names"]), best.trial, metadata,
                        reference=members_mean)


def export_ensemble(plugins: Plugins, study: optuna.Study, artifacts: Path, fmt: str, out_dir: Path,
                    rounds: int | str = "auto", overwrite: bool = False,
                    max_latency_ms: float | None = None,
                    quantize: QuantizeRequest | None = None, flip: str = "off") -> tuple[ExportReport, Ensemble]:
    """Select an ensemble from the study's kept validation probabilities and export it as one model. When
    the selection keeps one trial alone, or ``auto``'s cross-fitted check refuses the ensemble, that trial is
    exported as a single model. ``max_latency_ms``
    bounds the sum of the members' measured batch-1 latencies (see ``select_ensemble``), and with ``flip`` the
    mirror-averaged graph's measured latency (see deploy/flip.py: judged on the members' weighted predictions)."""
    from automl_tl.tuning.latency import timed_trials

    found = candidates(study, artifacts, limit=LIBRARY_SIZE if max_latency_ms is None else None)
    latency = {t.number: ms for t, ms in timed_trials(study.get_trials(deepcopy=False))}
    ensemble = select_ensemble(found, rounds, latency, max_latency_ms)
    check_format(plugins.framework(found[0].framework), fmt)
    parity = load_parity_images(artifacts, study.study_name, study_key(study))
    if ensemble.size == 1:
        source = trial_source(plugins, study, artifacts, ensemble.members[0])
        source.metadata["ensemble"] = {**ensemble.to_dict(), "selection": SELECTION}
    else:
        source = ensemble_source(plugins, study, artifacts, ensemble)
    source.flip = judge_flip(flip, artifacts, list(zip(ensemble.members, ensemble.weights)))
    return write_export(source, fmt, out_dir, parity, overwrite, quantize, max_latency_ms), ensemble
