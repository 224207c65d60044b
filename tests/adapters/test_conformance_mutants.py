"""The conformance suite rejects broken plugins: each mutant (tests/adapters/mutants/) fails the checks
meant to catch it, with a message that starts with the backbone's name and says what is wrong.

The unbroken adapters pass the same checks (tests/adapters/test_torch_conformance.py and
test_keras_conformance.py), so every failure here is the mutation's."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automl_tl.testing import AdapterConformance, ConformanceFailure, suite_environment
from automl_tl_torch.testing import TorchBackboneConformance
from tests.adapters.mutants import torch_mutants as tm
from tests.support.sample_plugins.torch_inline import tiny_spec


def torch_suite(adapter: type = tm.TorchAdapter, spec: Callable[[], Any] = tiny_spec) -> type[AdapterConformance]:
    """The torch conformance suite, pointed at a (mutant) adapter class and a (mutant) spec."""
    return type(f"Suite_{adapter.__name__}_{spec.__name__}", (TorchBackboneConformance,),
                {"make_adapter": lambda self: adapter(), "make_spec": lambda self: spec()})


def keras_suite(adapter_name: str) -> type[AdapterConformance]:
    pytest.importorskip("keras", reason="the keras extra is not installed")
    from automl_tl_keras.testing import KerasBackboneConformance
    from tests.adapters.mutants import keras_mutants
    from tests.support.sample_plugins.keras_inline import tiny_keras_spec

    adapter = getattr(keras_mutants, adapter_name)
    return type(f"Suite_{adapter_name}", (KerasBackboneConformance,),
                {"make_adapter": lambda self: adapter(), "make_spec": lambda self: tiny_keras_spec()})


def run_check(suite_class: type[AdapterConformance], check: str, tmp_path: Path) -> None:
    """One of the suite's test methods, as pytest would run it: in a cache folder of its own."""
    suite = suite_class()
    with suite_environment(tmp_path / "cache", suite.cache_dtype):
        method = getattr(suite, check)
        method(tmp_path) if "tmp_path" in inspect.signature(method).parameters else method()


HEAD_CHECKS = ("test_head_phase_trains_only_the_head", "test_the_head_learns_in_the_first_phase",
               "test_finetune_phase_trains_only_blocks_above_the_freeze_point")

# (suite, the checks that must fail, words the failure must contain)
CASES: list[tuple[str, Callable[[], type[AdapterConformance]], tuple[str, ...], str]] = [
    *[("head_never_trains", lambda: torch_suite(tm.HeadNeverTrains), (check,), "the head never trains")
      for check in HEAD_CHECKS],
    ("block_features_one_too_deep", lambda: torch_suite(tm.BlockFeaturesOneTooDeep),
     ("test_features_up_to_block_k",), "block_features(k=2) differs from the model's own block-2 output"),
    ("freezes_one_block_too_few", lambda: torch_suite(tm.FreezesOneBlockTooFew),
     ("test_finetune_phase_trains_only_blocks_above_the_freeze_point",),
     "block 1 ('features.1') changed during fine-tuning, but the trial freezes blocks 0..1"),
    ("unseeded_head", lambda: torch_suite(tm.UnseededHead), ("test_determinism_under_a_fixed_seed",),
     "two trials of one config and seed differ"),
    ("export_without_normalisation", lambda: torch_suite(tm.ExportWithoutNormalisation),
     ("test_export_parity_for_every_format",), "the onnx export's output differs from the reloaded model's"),
    ("load_forgets_the_head", lambda: torch_suite(tm.LoadForgetsTheHead), ("test_save_and_load_round_trip",),
     "the reloaded model's output on the test split (save, then load) differs from the trial's own"),
    ("factory_ignores_pretrained", lambda: torch_suite(spec=tm.random_every_build_spec),
     ("test_pretrained_builds_give_the_same_features",), "two builds with pretrained=True give different features"),
    ("wrong_feature_dim", lambda: torch_suite(spec=tm.wrong_feature_dim_spec), ("test_features_up_to_block_k",),
     "feature_dim"),
    ("wrong_block_name", lambda: torch_suite(spec=tm.wrong_block_name_spec), ("test_features_up_to_block_k",),
     "features.9"),
    ("scalar_mean", lambda: torch_suite(spec=tm.scalar_mean_spec), ("test_adapter_declares_itself",), "mean=0.5"),
    ("ignores_should_stop", lambda: torch_suite(tm.StopIgnored),
     ("test_an_epoch_stopped_after_every_step_trains_what_an_uninterrupted_one_does",), "it must be asked after every"),
    ("restarts_the_epoch", lambda: torch_suite(tm.EpochStartsOver),
     ("test_an_epoch_stopped_after_every_step_trains_what_an_uninterrupted_one_does",), "must continue the same epoch"),
    ("keras_block_features_one_too_shallow", lambda: keras_suite("KerasBlockFeaturesOneTooShallow"),
     ("test_features_up_to_block_k",), "block_features(k=2) differs from the model's own block-2 output"),
    ("keras_freezes_nothing", lambda: keras_suite("KerasFreezesNothing"),
     ("test_finetune_phase_trains_only_blocks_above_the_freeze_point",), "changed during fine-tuning"),
]


@pytest.mark.parametrize("make_suite, check, says",
                         [pytest.param(make, check, says, id=f"{name}-{check.removeprefix('test_')}")
                          for name, make, checks, says in CASES for check in checks])
def test_the_suite_fails_the_mutant_naming_the_backbone_and_the_fault(make_suite, check, says, tmp_path):
    suite_class = make_suite()
    with pytest.raises(ConformanceFailure) as failure:
        run_check(suite_class, check, tmp_path)
    message = str(failure.value)
    backbone = suite_class().make_spec().name
    assert message.startswith(f"{backbone}: "), message
    assert says in message, message


@pytest.mark.parametrize("check", ["test_features_up_to_block_k", "test_finetune_phase_trains_only_blocks_above_the_freeze_point",
                                   "test_head_phase_trains_only_the_head"])
def test_the_unbroken_adapter_passes_the_same_checks_through_the_same_runner(check, tmp_path):
    run_check(torch_suite(), check, tmp_path)


def test_a_failure_reads_as_one_line_naming_backbone_field_and_numbers():
    from automl_tl.testing.verdicts import require_close

    with pytest.raises(ConformanceFailure, match=r"^mobilenet_v2: block_features\(k=3\) differs from the model's own "
                                                 r"block-3 output by 0.41 \(tolerance 1e-4\)$"):
        require_close("mobilenet_v2", "block_features(k=3)", [[1.0, 0.59]], [[1.0, 1.0]], 1e-4,
                      "the model's own block-3 output")
    with pytest.raises(ConformanceFailure, match=r"has shape \(1, 2\), but .* has shape \(1, 3\)"):
        require_close("resnet18", "block_features(k=1)", [[1.0, 2.0]], [[1.0, 2.0, 3.0]], 1e-4, "the reference")


def test_the_suite_uses_its_own_cache_folder_and_restores_the_callers_settings(monkeypatch, tmp_path):
    from automl_tl.cache.store import store_from_env

    mine = {"AUTOML_TL_CACHE_DIR": str(tmp_path / "mine"), "AUTOML_TL_CACHE_DTYPE": "float16", "AUTOML_TL_THREADS": "7"}
    for name, value in mine.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AUTOML_TL_CACHE_GB", raising=False)
    with suite_environment(dtype="float32") as folder:
        store = store_from_env()
        assert store.root == folder != tmp_path / "mine" and store.dtype.name == "float32"
        assert os.environ["AUTOML_TL_THREADS"] == "1"
    assert not folder.exists() and not (tmp_path / "mine").exists()
    assert {name: os.environ.get(name) for name in mine} == mine and "AUTOML_TL_CACHE_GB" not in os.environ


class CrashesInTheFramework(tm.TorchAdapter):
    """An adapter whose framework fails on the backbone (as a model too deep for 16 px inputs does)."""

    def start_trial(self, spec, config, data):  # noqa: ANN001, ANN201
        raise ValueError("Negative dimension size caused by subtracting 3 from 2")


def test_a_framework_error_fails_the_check_naming_the_backbone_and_the_image_size(tmp_path):
    with pytest.raises(ConformanceFailure) as failed:
        run_check(torch_suite(CrashesInTheFramework), "test_head_phase_trains_only_the_head", tmp_path)
    message = str(failed.value)
    assert message.startswith(f"{tiny_spec().name}: ") and "ValueError: Negative dimension" in message
    assert "image_size" in message


def test_a_backbone_whose_weights_are_not_here_is_skipped_with_the_reason():
    import dataclasses

    from automl_tl.types import WeightsInfo

    def absent() -> Any:
        return dataclasses.replace(tiny_spec(), weights=WeightsInfo(source="somewhere", is_available=lambda: False,
                                                                   where="/nowhere/w.pth"))

    suite = torch_suite(spec=absent)()
    fixture = type(suite)._conformance_environment.__wrapped__  # the autouse fixture's own function
    with pytest.raises(pytest.skip.Exception, match="weights are not here.*/nowhere/w.pth"):
        next(fixture(suite, Path("/tmp")))
