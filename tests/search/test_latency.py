"""Latency: measured once per architecture and cached per machine, a constraint a search respects without
training what is over it, and the fastest accurate trial picked with a reason."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import re
from dataclasses import replace

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

import automl_tl.tuning.latency as latency
from automl_tl.distributed.loop import run_search
from automl_tl.distributed.workers import read_stored_study, worker_settings
from automl_tl.errors import TrialFailure
from automl_tl.runtime.deadline import Deadline, running_under
from automl_tl.runtime.timing import median_ms
from automl_tl.storage.artifacts import study_folder, study_key, trial_dir
from automl_tl.storage.urls import artifacts_dir, storage_url
from automl_tl.study_record import LATENCY_ATTR, LATENCY_B32_ATTR, LATENCY_ERROR_ATTR, TOO_SLOW_ATTR
from automl_tl.tuning.budget import ranked_trials
from automl_tl.tuning.latency import (
    CONSTRAINT_KEY,
    LatencyCache,
    architecture_latency,
    architecture_of,
    fastest_accurate,
    pareto_front,
    record_latency,
)
from automl_tl.tuning.trial_runner import LATENCY_RESERVE_S
from automl_tl.types import BackboneSpec, TrialConfig
from tests.support.sample_plugins.stub_plugin import stub_spec
from tests.support.stub_search import stub_settings

CONFIG = TrialConfig(backbone="stub_net", freeze_fraction=0.5, head_units=128, head_dropout=0.1, lr=1e-3,
                     finetune_lr_ratio=0.1, switch_epoch=2, epochs=4, image_size=16, cut_fraction=0.5)


def stub_ms(head_units: int) -> float:
    """The stub architecture's "latency": wider heads are slower (0 -> 1 ms ... 512 -> 9 ms)."""
    return 1.0 + head_units / 64


class CountingAdapter:
    """An adapter whose ``inference_latency`` counts its calls."""

    def __init__(self, figures: object = None) -> None:
        self.calls: list[TrialConfig] = []
        self.figures = figures

    def inference_latency(self, spec: BackboneSpec, config: TrialConfig, num_classes: int) -> object:
        self.calls.append(config)
        if self.figures is not None:
            return self.figures
        return {"batch_1_ms": stub_ms(config.head_units), "batch_32_ms": 20 * stub_ms(config.head_units)}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test its own latency file: the stub's figures differ from test to test."""
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "latency" / "latency.json"


def test_median_ms_is_the_median_after_warm_up_and_stops_at_its_budget():
    calls = []
    assert median_ms(lambda: calls.append(1), warmup=2, repeats=5, budget_s=60) < 50
    assert len(calls) == 7
    slow = []
    median_ms(lambda: (slow.append(1), __import__("time").sleep(0.02)), warmup=0, repeats=100, budget_s=0.01)
    assert len(slow) == 3, "past its budget it times the minimum of three calls, not all 100"
    with pytest.raises(ValueError):
        median_ms(lambda: None, repeats=0)


def test_the_key_is_the_architecture_not_the_weights_or_the_training():
    spec = stub_spec()
    base = architecture_of(spec, CONFIG, 10)
    assert (base.depth, base.cut_at, base.head_units, base.image_size, base.num_classes) == (2, "b1", 128, 16, 10)
    for training_only in (dict(lr=0.1), dict(head_dropout=0.5), dict(freeze_fraction=1.0), dict(switch_epoch=4),
                          dict(seed=3), dict(unfrozen_bn="frozen"), dict(augment="hflip")):
        assert architecture_of(spec, replace(CONFIG, **training_only), 10) == base, training_only
    for shape in (dict(head_units=256), dict(cut_fraction=1.0), dict(image_size=32)):
        assert architecture_of(spec, replace(CONFIG, **shape), 10) != base, shape
    assert architecture_of(spec, CONFIG, 3) != base
    scratch = architecture_of(stub_spec(pretrained=False), CONFIG, 10)
    assert scratch.depth == 4, "a from-scratch backbone is never cut, whatever cut_fraction asks"
    machine = latency.machine_signature()
    assert {"cpu", "threads", "onnxruntime", "tensorflow"} <= set(machine) and machine["threads"] >= 1
    for runtime in ("onnxruntime", "tensorflow"):
        if importlib.util.find_spec(runtime) is not None:
            assert machine[runtime], f"{runtime} is installed here (under any of its distribution names)"
    assert latency.cache_key(base, machine) != latency.cache_key(base, {**machine, "threads": machine["threads"] + 1})


def test_an_architecture_is_measured_once_and_then_read_from_the_cache(own_cache, monkeypatch):
    adapter, spec = CountingAdapter(), stub_spec()
    first = architecture_latency(adapter, spec, CONFIG, 10)
    assert first == {"batch_1_ms": 3.0, "batch_32_ms": 60.0} and len(adapter.calls) == 1
    assert architecture_latency(adapter, spec, replace(CONFIG, lr=0.05), 10) == first
    assert len(adapter.calls) == 1, "the same architecture with other training settings is a cache hit"
    assert architecture_latency(CountingAdapter(), spec, CONFIG, 10) == first, "another process reads the file"
    architecture_latency(adapter, spec, replace(CONFIG, head_units=512), 10)
    assert len(adapter.calls) == 2
    stored = json.loads(own_cache.read_text())
    assert stored["format"] == latency.FORMAT_VERSION and len(stored["entries"]) == 2
    monkeypatch.setattr(latency, "machine_signature", lambda: {"cpu": "another machine", "threads": 64})
    architecture_latency(adapter, spec, CONFIG, 10)
    assert len(adapter.calls) == 3, "another machine measures again"
    assert adapter.calls[0].freeze_fraction == CONFIG.freeze_fraction
    architecture_latency(adapter, stub_spec(pretrained=False), CONFIG, 10)
    assert adapter.calls[-1].cut_fraction == 1.0, "the adapter measures what the trial will run"
    assert architecture_latency(object(), spec, CONFIG, 10) is None  # an adapter that cannot measure


@pytest.mark.parametrize("damage", [b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'{"format": 99, "entries": {}}',
                                    b'{"format": 1, "entries": []}', b""])
def test_a_damaged_cache_file_is_ignored_and_rewritten(own_cache, damage):
    own_cache.parent.mkdir(parents=True)
    own_cache.write_bytes(damage)
    adapter = CountingAdapter()
    assert architecture_latency(adapter, stub_spec(), CONFIG, 10)["batch_1_ms"] == 3.0
    assert len(json.loads(own_cache.read_text())["entries"]) == 1, "rewritten whole"
    architecture_latency(adapter, stub_spec(), CONFIG, 10)
    assert len(adapter.calls) == 1
    assert not [p for p in own_cache.parent.iterdir() if p.name.startswith(".partial-")]


def test_a_damaged_entry_is_measured_again(own_cache):
    adapter = CountingAdapter()
    architecture_latency(adapter, stub_spec(), CONFIG, 10)
    stored = json.loads(own_cache.read_text())
    for entry in stored["entries"].values():
        entry["latency"] = {"batch_1_ms": "fast"}
    own_cache.write_text(json.dumps(stored))
    assert architecture_latency(adapter, stub_spec(), CONFIG, 10)["batch_1_ms"] == 3.0 and len(adapter.calls) == 2


def test_an_unwritable_cache_only_costs_measuring_again(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(blocker))
    adapter = CountingAdapter()
    assert architecture_latency(adapter, stub_spec(), CONFIG, 10)["batch_1_ms"] == 3.0
    assert architecture_latency(adapter, stub_spec(), CONFIG, 10)["batch_1_ms"] == 3.0
    assert len(adapter.calls) == 2 and LatencyCache().entries() == {}


@pytest.mark.parametrize("figures", [{"batch_32_ms": 4.0}, {"batch_1_ms": -1.0}, {"batch_1_ms": math.nan},
                                     {"batch_1_ms": True}, [3.0]])
def test_an_adapter_that_gives_no_milliseconds_fails_the_trial(figures):
    with pytest.raises(TrialFailure, match="inference_latency"):
        architecture_latency(CountingAdapter(figures), stub_spec(), CONFIG, 10)
    assert LatencyCache().entries() == {}


class Broken:
    def inference_latency(self, spec, config, num_classes):
        raise RuntimeError("cannot export this")


def test_a_failed_measurement_is_recorded_without_a_limit_and_fails_the_trial_with_one():
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    assert record_latency(trial, Broken(), stub_spec(), CONFIG, 10, None) is None
    assert "cannot export this" in study.trials[0].user_attrs[LATENCY_ERROR_ATTR]
    with pytest.raises(TrialFailure, match="could not be measured for --max-latency-ms.*cannot export this"):
        record_latency(study.ask(), Broken(), stub_spec(), CONFIG, 10, 5.0)


def test_record_latency_sets_the_attributes_and_the_constraint():
    study = optuna.create_study(direction="maximize")
    fast, slow, free = study.ask(), study.ask(), study.ask()
    assert record_latency(fast, CountingAdapter(), stub_spec(), CONFIG, 10, 5.0) == 3.0
    assert record_latency(slow, CountingAdapter(), stub_spec(), replace(CONFIG, head_units=512), 10, 5.0) == 9.0
    assert record_latency(free, CountingAdapter(), stub_spec(), CONFIG, 10, None) == 3.0
    frozen = study.get_trials(deepcopy=False)
    assert frozen[0].user_attrs[LATENCY_ATTR] == 3.0 and frozen[0].user_attrs[LATENCY_B32_ATTR] == 60.0
    assert frozen[0].constraints == {CONSTRAINT_KEY: -2.0} and frozen[1].constraints == {CONSTRAINT_KEY: 4.0}
    assert frozen[2].constraints == {}, "without a limit there is no constraint"


# --- searches with the stub framework -------------------------------------------------------------------


def settings(data, name="lat", trials=10, epochs=3, **changes):
    return stub_settings(data, name, trials, epochs, **{"smart_start": False, **changes})


@pytest.fixture
def timed_stub(stub_plugins, monkeypatch):
    """The stub framework with a latency that grows with the head, and a record of the trials it trained."""
    adapter = stub_plugins.framework("stub")
    measured, trained = CountingAdapter(), []
    monkeypatch.setattr(adapter, "inference_latency", measured.inference_latency, raising=False)
    start = adapter.start_trial

    def counting_start(spec, config, data):
        trained.append(config.head_units)
        return start(spec, config, data)

    monkeypatch.setattr(adapter, "start_trial", counting_start)
    return stub_plugins, measured, trained


def test_a_trial_over_the_limit_is_not_trained_and_not_ranked(timed_stub, table, small_sample):
    plugins, measured, trained = timed_stub
    console = Console(file=io.StringIO(), width=300)
    result = run_search(settings(small_sample, trials=12, max_latency_ms=4.0, pruner="none", show_bars=False),
                        plugins, table, console)
    trials = result.study.get_trials(deepcopy=False)
    slow = [t for t in trials if t.params.get("head_units", 0) in (256, 512)]
    assert slow, "the sampler proposed wide heads"
    for trial in slow:
        assert trial.state == TrialState.PRUNED and TOO_SLOW_ATTR in trial.user_attrs
        assert trial.constraints[CONSTRAINT_KEY] > 0 and not trial.intermediate_values
        assert not trial_dir(study_folder(artifacts_dir("lat"), study_key(result.study)), trial.number).exists()
    assert set(trained) <= {0, 128}, "no wide head was trained"
    fast = [t for t in trials if t.state == TrialState.COMPLETE]
    assert fast and all(t.constraints[CONSTRAINT_KEY] <= 0 and t.user_attrs[LATENCY_ATTR] <= 4.0 for t in fast)
    assert {t.number for t in ranked_trials(result.study)} == {t.number for t in fast}
    assert result.study.best_trial.user_attrs[LATENCY_ATTR] <= 4.0
    assert re.search(r"too slow: (5|9)\.0 ms > limit 4 ms, not trained", console.file.getvalue())
    architectures = [architecture_of(stub_spec(), config, table.num_classes) for config in measured.calls]
    assert len(set(architectures)) == len(architectures), "each architecture is measured once, then read from the cache"


def test_without_a_limit_only_complete_trials_are_measured_and_after_they_train(timed_stub, table, small_sample):
    plugins, measured, _ = timed_stub
    result = run_search(settings(small_sample, trials=12, epochs=6, pruner="median"), plugins, table, Console(quiet=True))
    trials = result.study.get_trials(deepcopy=False)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete
    assert all(LATENCY_ATTR not in t.user_attrs for t in pruned), "a pruned trial's latency is never wanted"
    assert all(LATENCY_ATTR in t.user_attrs for t in complete)
    assert len(measured.calls) <= len(complete)


def test_no_latency_is_measured_when_the_deadline_is_near(timed_stub, table, small_sample):
    plugins, measured, _ = timed_stub
    with running_under(Deadline.after(LATENCY_RESERVE_S / 2)):
        result = run_search(settings(small_sample, trials=2, epochs=1, pruner="none"), plugins, table,
                            Console(quiet=True))
    complete = [t for t in result.study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert complete and not measured.calls and all(LATENCY_ATTR not in t.user_attrs for t in complete)


def test_pruning_still_works_in_a_constrained_study(timed_stub, table, small_sample):
    plugins, _, _ = timed_stub
    result = run_search(settings(small_sample, trials=16, epochs=6, max_latency_ms=6.0, pruner="median"),
                        plugins, table, Console(quiet=True))
    trials = result.study.get_trials(deepcopy=False)
    by_pruner = [t for t in trials if t.state == TrialState.PRUNED and TOO_SLOW_ATTR not in t.user_attrs]
    too_slow = [t for t in trials if TOO_SLOW_ATTR in t.user_attrs]
    assert by_pruner, "the pruner stopped trials that fell behind, as without a limit"
    assert all(t.intermediate_values and t.constraints[CONSTRAINT_KEY] <= 0 for t in by_pruner)
    assert too_slow and all(t.params["head_units"] == 512 for t in too_slow)


def test_smart_start_trials_over_the_limit_end_at_once_and_the_budget_is_met(timed_stub, table, small_sample):
    plugins, _, trained = timed_stub
    result = run_search(settings(small_sample, trials=4, max_latency_ms=0.5, smart_start=True), plugins, table,
                        Console(quiet=True))
    trials = result.study.get_trials(deepcopy=False)
    assert any("smart_start" in t.user_attrs for t in trials), "smart start enqueued trials"
    assert len(trials) == 4 and all(t.state == TrialState.PRUNED and TOO_SLOW_ATTR in t.user_attrs for t in trials)
    assert trained == [] and ranked_trials(result.study) == []


def test_a_resumed_study_takes_the_new_limit_and_workers_read_it(timed_stub, table, small_sample):
    plugins, _, _ = timed_stub
    first = run_search(settings(small_sample, trials=4, pruner="none"), plugins, table, Console(quiet=True))
    before = first.study.get_trials(deepcopy=False)
    assert all(LATENCY_ATTR in t.user_attrs and t.constraints == {} for t in before), "measured, not constrained"
    resumed = run_search(settings(small_sample, trials=10, max_latency_ms=2.0, pruner="none"), plugins, table,
                         Console(quiet=True))
    after = resumed.study.get_trials(deepcopy=False)[4:]
    assert after and all(CONSTRAINT_KEY in t.constraints for t in after)
    assert all(t.state == TrialState.COMPLETE for t in after if t.params.get("head_units", 0) == 0)
    assert all(TOO_SLOW_ATTR in t.user_attrs for t in after if t.params.get("head_units", 0) != 0)
    stored = read_stored_study("lat", storage_url("lat", None))
    assert stored.settings.max_latency_ms == 2.0
    assert worker_settings(stored, plugins, str(small_sample), artifacts_dir("lat")).max_latency_ms == 2.0


# --- the fastest accurate trial and the Pareto front ----------------------------------------------------------


def synthetic(rows: list[tuple[float, float | None, str]]) -> list[optuna.trial.FrozenTrial]:
    """Completed trials (value, latency or None, backbone), numbered in order, plus one pruned trial."""
    distributions = {"backbone": CategoricalDistribution(["fast", "big"]), "lr": FloatDistribution(1e-4, 1e-1, log=True)}
    trials = []
    for number, (value, ms, backbone) in enumerate(rows):
        trial = create_trial(value=value, params={"backbone": backbone, "lr": 1e-3}, distributions=distributions,
                             user_attrs={} if ms is None else {LATENCY_ATTR: ms})
        trial.number = number
        trials.append(trial)
    pruned = create_trial(state=TrialState.PRUNED, params={"backbone": "fast", "lr": 1e-3}, distributions=distributions,
                          user_attrs={LATENCY_ATTR: 0.1, TOO_SLOW_ATTR: "no"})
    pruned.number = len(rows)
    return [*trials, pruned]


def test_fastest_accurate_takes_the_most_accurate_within_the_limit_and_says_who_was_better():
    trials = synthetic([(0.85, 2.0, "fast"), (0.80, 1.0, "fast"), (0.91, 3.2, "fast"), (0.93, 8.1, "big"),
                        (0.91, 4.5, "fast")])
    chosen, reason = fastest_accurate(trials, 5.0)
    assert chosen is not None and chosen.number == 2, "0.91 at 3.2 ms beats the equal 0.91 at 4.5 ms"
    assert reason == "trial 2: score 0.9100 at 3.2 ms (batch 1, within 5 ms); trial 3 (0.9300) takes 8.1 ms > 5 ms"
    chosen, reason = fastest_accurate(trials, 10.0)
    assert chosen.number == 3 and reason.endswith("the most accurate trial")
    chosen, reason = fastest_accurate(trials, 0.5)
    assert chosen is None and "no completed trial runs within 0.5 ms" in reason and "trial 1" in reason
    assert "1.0 ms" in reason, "the pruned trial at 0.1 ms is not a candidate"


def test_fastest_accurate_leaves_out_trials_without_a_latency_and_says_so():
    chosen, reason = fastest_accurate(synthetic([(0.99, None, "big"), (0.7, 1.0, "fast")]), 5.0)
    assert chosen.number == 1 and "1 completed trial has no measured latency" in reason
    chosen, reason = fastest_accurate(synthetic([(0.99, None, "big")]), 5.0)
    assert chosen is None and reason.startswith("no completed trial has a measured latency")


def test_pareto_front():
    points = [(3.0, 0.90), (1.0, 0.80), (2.0, 0.80), (8.0, 0.93), (9.0, 0.92), (3.0, 0.90), (0.5, math.nan)]
    assert pareto_front(points) == [1, 0, 5, 3], "fastest first; the equal points both; dominated and NaN left out"
    assert pareto_front([]) == [] and pareto_front([(1.0, 0.5)]) == [0]
    assert pareto_front([(1.0, 0.5), (1.0, 0.6)]) == [1], "as fast and more accurate dominates"


def test_limit_note_says_what_the_limit_kept_from_training():
    trials = synthetic([(0.9, 1.0, "fast"), (0.8, None, "big")])
    trials[-1].user_attrs[LATENCY_ATTR] = 7.5  # the pruned one: too slow at 7.5 ms
    note = latency.limit_note(trials, 5.0)
    assert note.startswith("1 of 3 finished trials were over --max-latency-ms 5 and not trained (the fastest of them "
                           "takes 7.5 ms at batch 1)") and "1 finished trial(s) have no measured latency" in note
    assert latency.limit_note(trials, None) is None
    assert latency.limit_note(synthetic([(0.9, 1.0, "fast")])[:1], 5.0) is None


# --- the torch adapter, for real -----------------------------------------------------------------------------


def test_the_torch_adapter_times_the_onnx_export_at_batch_1_and_32(own_cache):
    pytest.importorskip("onnxruntime")
    from automl_tl.plugin.manager import load_plugins

    plugins = load_plugins()
    spec, adapter = plugins.backbone("small_cnn"), plugins.framework("torch")
    config = replace(CONFIG, backbone="small_cnn", image_size=16, head_units=128)
    figures = adapter.inference_latency(spec, config, 10)
    assert set(figures) == {"batch_1_ms", "batch_32_ms"} and all(0 < ms < 5000 for ms in figures.values())
    study = optuna.create_study(direction="maximize")
    assert record_latency(study.ask(), adapter, spec, config, 10, 1e-9) == pytest.approx(
        LatencyCache().entries().popitem()[1]["latency"]["batch_1_ms"])
    assert study.trials[0].constraints[CONSTRAINT_KEY] > 0


def test_search_with_max_latency_ms_trains_nothing_over_it(small_sample, capsys):
    pytest.importorskip("onnxruntime")
    from automl_tl.cli import main

    args = ["search", str(small_sample), "--study", "tiny", "--trials", "2", "--epochs", "1", "--image-size", "16",
            "--backbones", "small_cnn", "--no-smart-start"]
    assert main([*args, "--max-latency-ms", "0.000001"]) == 0
    out = capsys.readouterr().out
    assert "too slow" in out and "2 of 2 finished trials were over --max-latency-ms 1e-06 and not trained" in out
    assert main(["show", "tiny"]) == 0
    assert "2 trial(s) over the latency limit (now 1e-06 ms) were not trained: 0, 1" in capsys.readouterr().out
    assert main([*args, "--max-latency-ms", "-3"]) == 2
    assert "--max-latency-ms -3" in capsys.readouterr().err


def test_the_keras_adapter_times_its_exported_graph_at_batch_1_and_32():
    pytest.importorskip("tensorflow", reason="the keras extra is not installed")
    from automl_tl.plugin.manager import load_plugins

    plugins = load_plugins()
    spec = plugins.backbone("MobileNetV2")
    if not spec.weights_available():
        pytest.skip("the ported Keras MobileNetV2 weights are not here (make setup ports them from the torchvision file)")
    config = replace(CONFIG, backbone="MobileNetV2", image_size=32, head_units=128)
    figures = plugins.framework("keras").inference_latency(spec, config, 10)
    assert set(figures) == {"batch_1_ms", "batch_32_ms"} and all(0 < ms < 5000 for ms in figures.values())


def test_the_cache_command_lists_the_latency_file_and_clear_empties_it(own_cache, capsys):
    from automl_tl.cli import main

    architecture_latency(CountingAdapter(), stub_spec(), CONFIG, 10)
    architecture_latency(CountingAdapter(), stub_spec(), replace(CONFIG, head_units=0), 10)
    assert main(["cache", "--json"]) == 0
    rows = {row["cache"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["latency"]["path"] == str(own_cache) and rows["latency"]["entries"] == 2
    assert rows["latency"]["bytes"] == own_cache.stat().st_size
    assert main(["cache", "--clear"]) == 0
    assert "latency: removed 2 entries" in capsys.readouterr().out and not own_cache.exists()
    assert main(["cache", "--json"]) == 0
    assert {row["cache"]: row for row in json.loads(capsys.readouterr().out)}["latency"]["entries"] == 0
