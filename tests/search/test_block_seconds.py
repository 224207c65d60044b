"""Block timings: measured per block on a small batch (warm-up, then the median), once per backbone, size and
machine, kept beside the latency cache in a file proven ours, and cleared by ``cache --clear``."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from automl_tl.cache.block_timing import PROFILE_IMAGES, probe_table, time_blocks
from automl_tl.cli import main
from automl_tl.tuning.block_seconds import (
    BlockSecondsCache,
    BlockSecondsSource,
    block_seconds_file,
    block_seconds_of,
    profile_machine,
)
from automl_tl.tuning.latency import LatencyCache
from automl_tl.types import BackboneSpec
from tests.support.sample_plugins.stub_plugin import stub_spec


class FakePrefix:
    """Blocks that "take" ``cost[k] * rows`` on a fake clock; the first pass of each block takes 100x (warm-up)."""

    def __init__(self, cost: list[float], rows: int = 64) -> None:
        self.cost, self.n_blocks, self.now = cost, len(cost), 0.0
        self.data = probe_table(8, rows)
        self.calls: list[tuple[int, int]] = []

    def rows_per_batch(self) -> int:
        return 128

    def normalise_batch(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32)

    def run_batch(self, inputs: np.ndarray, start: int, stop: int) -> np.ndarray:
        first = not any(call == (start, stop) for call in self.calls)
        self.calls.append((start, stop))
        self.now += self.cost[start] * len(inputs) * (100 if first else 1)
        return inputs

    def clock(self) -> float:
        return self.now


def test_time_blocks_times_each_block_after_a_warm_up_per_image():
    prefix = FakePrefix([0.01, 0.002, 0.03])
    seconds = time_blocks(prefix, repeats=3, budget_s=100.0, clock=prefix.clock)  # type: ignore[arg-type]
    assert seconds == pytest.approx([0.01, 0.002, 0.03])  # the 100x warm-up pass is not counted
    assert prefix.calls.count((0, 1)) == 4 and len(prefix.calls) == 12  # one untimed pass, three timed
    slow = FakePrefix([1.0, 2.0])  # 8 s a timed pass: past the budget after the first
    assert time_blocks(slow, repeats=3, budget_s=2.0, clock=slow.clock) == pytest.approx([1.0, 2.0])  # type: ignore[arg-type]
    assert slow.calls.count((0, 1)) == 2  # the warm-up and one timed pass
    assert PROFILE_IMAGES <= 16


class CountingAdapter:
    """An adapter whose ``block_seconds`` counts its calls and returns ``figures``."""

    device = "cpu"

    def __init__(self, figures: Any = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.figures = figures

    def block_seconds(self, spec: BackboneSpec, image_size: int) -> Any:
        self.calls.append((spec.name, image_size))
        return self.figures if self.figures is not None else [1e-3 * (i + 1) for i in range(len(spec.blocks))]


def test_block_seconds_are_measured_once_per_backbone_size_and_machine(tmp_path):
    cache, spec, adapter = BlockSecondsCache(tmp_path / "block_seconds.json"), stub_spec(), CountingAdapter()
    first = block_seconds_of(adapter, spec, 32, cache)  # type: ignore[arg-type]
    assert first is not None and len(first.seconds) == len(spec.blocks) and first.profiled_s >= 0
    again = block_seconds_of(adapter, spec, 32, cache)  # type: ignore[arg-type]
    assert again is not None and again.seconds == first.seconds and again.profiled_s == 0
    assert adapter.calls == [(spec.name, 32)]
    block_seconds_of(adapter, spec, 64, cache)  # type: ignore[arg-type]
    block_seconds_of(adapter, replace(spec, blocks=spec.blocks[:-1]), 32, cache)  # type: ignore[arg-type]
    assert len(adapter.calls) == 3
    other = {**profile_machine(adapter), "cpu": "another CPU"}  # type: ignore[arg-type]
    assert cache.get(spec, 32, other) is None and cache.get(spec, 32, profile_machine(adapter)) == first.seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("figures", [[1.0], [1.0, -2.0, 1.0, 1.0], ["1", 1, 1, 1], [float("nan")] * 4, "fast"])
def test_figures_that_are_not_one_positive_number_per_block_are_not_kept(tmp_path, figures):
    spec = replace(stub_spec(), blocks=("a", "b", "c", "d"))
    cache = BlockSecondsCache(tmp_path / "block_seconds.json")
    assert block_seconds_of(CountingAdapter(figures), spec, 32, cache) is None  # type: ignore[arg-type]
    assert cache.entries() == {}


def test_an_adapter_that_cannot_measure_gives_none_and_a_failing_one_is_not_predicted(tmp_path):
    cache = BlockSecondsCache(tmp_path / "block_seconds.json")
    assert block_seconds_of(object(), stub_spec(), 32, cache) is None  # type: ignore[arg-type]

    class Failing(CountingAdapter):
        def block_seconds(self, spec: BackboneSpec, image_size: int) -> Any:
            raise RuntimeError("no device")

    source = BlockSecondsSource(lambda framework: Failing(), cache)  # type: ignore[arg-type,return-value]
    assert source(stub_spec(), 32) is None
    counting = CountingAdapter()
    measured = BlockSecondsSource(lambda framework: counting, cache)  # type: ignore[arg-type,return-value]
    assert measured(stub_spec(), 32) == measured(stub_spec(), 32) and len(counting.calls) == 1


def test_a_damaged_or_foreign_file_reads_as_empty_and_is_replaced(tmp_path):
    path = tmp_path / "block_seconds.json"
    spec, adapter = stub_spec(), CountingAdapter()
    for content in ("not json", json.dumps({"format": 1, "entries": {}}), json.dumps([1, 2])):
        path.write_text(content)
        cache = BlockSecondsCache(path)
        assert cache.entries() == {}
        assert block_seconds_of(adapter, spec, 32, cache) is not None  # type: ignore[arg-type]
        assert BlockSecondsCache(path).get(spec, 32, profile_machine(adapter)) is not None  # type: ignore[arg-type]


def test_the_latency_file_and_the_block_seconds_file_never_pass_for_each_other(tmp_path):
    latency, blocks = LatencyCache(tmp_path / "a.json"), BlockSecondsCache(tmp_path / "b.json")
    blocks.put(stub_spec(), 32, {"cpu": "x"}, [1e-3] * len(stub_spec().blocks), 0.5)
    latency.put_entry("k", {"latency": {"batch_1_ms": 1.0}})
    assert not latency.proves(blocks.path) and not blocks.proves(latency.path)
    assert LatencyCache(blocks.path).entries() == {} and BlockSecondsCache(latency.path).entries() == {}


def test_cache_lists_and_clears_the_block_seconds_file_only_when_it_is_ours(capsys):
    path = block_seconds_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("my own notes")
    assert main(["cache", "--clear", "--json"]) == 0
    removed = {row["cache"]: row for row in json.loads(capsys.readouterr().out)}
    assert removed["block seconds"]["removed_entries"] == 0 and path.read_text() == "my own notes"
    path.unlink()
    assert block_seconds_of(CountingAdapter(), stub_spec(), 32) is not None  # type: ignore[arg-type]
    assert main(["cache", "--json"]) == 0
    listed = {row["cache"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["block seconds"]["entries"] == 1 and listed["block seconds"]["path"] == str(path)
    assert main(["cache", "--clear", "--json"]) == 0
    removed = {row["cache"]: row for row in json.loads(capsys.readouterr().out)}
    assert removed["block seconds"]["removed_entries"] == 1 and not path.exists()
