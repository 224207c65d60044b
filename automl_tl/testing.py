"""Adapter conformance suite: the contract every framework plugin must keep.

Subclass ``AdapterConformance`` in your plugin's tests, name the subclass ``Test...`` so
pytest collects it, and implement ``make_adapter``, ``make_spec`` and ``block_weights``:

    from automl_tl.testing import AdapterConformance

    class TestMyFramework(AdapterConformance):
        def make_adapter(self):
            return MyAdapter()

        def make_spec(self):
            return my_small_backbone_spec()   # a few blocks: the suite trains it many times

        def block_weights(self, session, index):
            return [w.copy() for w in session.model.blocks[index].get_weights()]

The suite checks: building a session, freeze semantics in both phases, the phase switch and
per-epoch reporting through the engine, probabilities from evaluation, snapshot/restore,
save/load round trips, a damaged weights file reported as UserError naming it, export parity for
every declared format (a format outside ``safe_formats`` refused unless trusted), features up to block k, and
determinism under a fixed seed (within ``determinism_tolerance``: 1e-5 on CPU for torch, 1e-4 for Keras).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.training.engine import run_trial
from automl_tl.errors import UserError
from automl_tl.search.space import config_from_params
from automl_tl.types import BackboneSpec, FrameworkAdapter, ImageTable, Phase, TrialConfig, TrialSession


def synthetic_table(n_per_split: int = 16, size: int = 16, classes: int = 2, seed: int = 0) -> ImageTable:
    """Noise images with a learnable signal (class c has a bright channel c), split evenly."""
    rng = np.random.default_rng(seed)
    n = 3 * n_per_split
    labels = np.arange(n) % classes
    images = rng.integers(0, 128, (n, size, size, 3), dtype=np.uint8)
    for c in range(classes):
        images[labels == c, :, :, c % 3] = 255
    splits = {name: np.arange(i * n_per_split, (i + 1) * n_per_split) for i, name in enumerate(("train", "val", "test"))}
    return ImageTable(images=images, labels=labels, class_names=tuple(f"c{i}" for i in range(classes)),
                      relpaths=tuple(f"{i}.png" for i in range(n)), splits=splits, manifest_hash=f"synthetic-{seed}-{size}-{n_per_split}-{classes}")


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


class AdapterConformance(abc.ABC):
    """Framework-neutral tests of a FrameworkAdapter; see the module docstring."""

    image_size = 16
    determinism_tolerance = 1e-5
    export_tolerance = 1e-4
    # A trial predicts from activations cached in float16; a reloaded model computes from the images.
    # A real pretrained backbone's activations are large enough for that rounding to show (~1e-4).
    reload_tolerance = 1e-5

    # -- what a plugin provides -----------------------------------------------------------
    @abc.abstractmethod
    def make_adapter(self) -> FrameworkAdapter:
        """The adapter under test."""

    @abc.abstractmethod
    def make_spec(self) -> BackboneSpec:
        """A small backbone of the adapter's framework (the suite trains it many times)."""

    @abc.abstractmethod
    def block_weights(self, session: TrialSession, index: int) -> list[np.ndarray]:
        """Copies of every weight and statistic (BatchNorm moving averages too) of block ``index``."""

    def make_table(self) -> ImageTable:
        return synthetic_table(size=self.image_size)

    # -- helpers --------------------------------------------------------------------------
    def config(self, epochs: int = 2, **changes: Any) -> TrialConfig:
        params = dict(backbone=self.make_spec().name, freeze_fraction=0.5, head_units=0, head_dropout=0.0, lr=1e-2,
                      finetune_lr_ratio=0.5, switch_epoch=1, unfrozen_bn="train")
        params.update(changes)
        return config_from_params(params, epochs=epochs, image_size=self.image_size, batch_size=8)

    def session(self, **changes: Any) -> tuple[FrameworkAdapter, TrialSession, ImageTable]:
        adapter, data = self.make_adapter(), self.make_table()
        return adapter, adapter.start_trial(self.make_spec(), self.config(**changes), data), data

    # -- the contract ---------------------------------------------------------------------
    def test_adapter_declares_itself(self) -> None:
        adapter, spec = self.make_adapter(), self.make_spec()
        assert adapter.is_installed()
        assert spec.framework == adapter.name and len(spec.blocks) >= 2
        assert isinstance(adapter.export_formats, tuple)
        assert isinstance(adapter.safe_formats, tuple) and set(adapter.safe_formats) <= set(adapter.export_formats)

    def test_head_phase_trains_only_the_head(self) -> None:
        _, session, _ = self.session()
        n = len(self.make_spec().blocks)
        before = [self.block_weights(session, i) for i in range(n)]
        session.set_phase(Phase.HEAD)
        session.train_epoch()
        assert all(_same(before[i], self.block_weights(session, i)) for i in range(n))

    def test_finetune_phase_trains_only_blocks_above_the_freeze_point(self) -> None:
        _, session, _ = self.session(freeze_fraction=0.5)
        n = len(self.make_spec().blocks)
        frozen = self.config(freeze_fraction=0.5).frozen_blocks(n)
        before = [self.block_weights(session, i) for i in range(n)]
        session.set_phase(Phase.HEAD)
        session.train_epoch()
        session.set_phase(Phase.FINETUNE)
        session.train_epoch()
        assert all(_same(before[i], self.block_weights(session, i)) for i in range(frozen)), "frozen blocks changed"
        assert not _same(before[n - 1], self.block_weights(session, n - 1)), "the top block did not learn"

    def test_predictions_are_probabilities_for_every_split(self) -> None:
        _, session, data = self.session()
        session.set_phase(Phase.HEAD)
        session.train_epoch()
        for split in ("train", "val", "test"):
            probabilities = session.predict_split(split)
            assert probabilities.shape == (len(data.splits[split]), data.num_classes)
            np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)

    def test_engine_switches_phase_once_and_reports_every_epoch(self, tmp_path: Path) -> None:
        adapter, data = self.make_adapter(), self.make_table()
        seen: list[tuple[int, Phase]] = []
        outcome = run_trial(adapter, self.make_spec(), self.config(switch_epoch=1, epochs=3), data,
                            on_epoch=lambda r: seen.append((r.epoch, r.phase)), save_to=tmp_path / "trial")
        assert seen == [(0, Phase.HEAD), (1, Phase.FINETUNE), (2, Phase.FINETUNE)]
        assert 0.0 <= outcome.val_accuracy <= 1.0 and any((tmp_path / "trial").iterdir())

    def test_snapshot_and_restore(self) -> None:
        _, session, _ = self.session(freeze_fraction=0.0)
        session.set_phase(Phase.HEAD)
        session.train_epoch()
        snapshot, expected = session.snapshot(), session.predict_split("val")
        session.set_phase(Phase.FINETUNE)
        session.train_epoch()
        session.restore(snapshot)
        np.testing.assert_allclose(session.predict_split("val"), expected, atol=1e-5)

    def _trained(self, tmp_path: Path, **changes: Any) -> tuple[FrameworkAdapter, Any, np.ndarray, ImageTable]:
        changes = {"head_units": 8, **changes}
        adapter, session, data = self.session(**changes)
        session.set_phase(Phase.HEAD)
        session.train_epoch()
        session.set_phase(Phase.FINETUNE)
        session.train_epoch()
        expected = session.predict_split("test")
        session.save(tmp_path / "trial")
        model = adapter.load(self.make_spec(), tmp_path / "trial", data.num_classes, self.config(**changes))
        return adapter, model, expected, data

    def test_save_and_load_round_trip(self, tmp_path: Path) -> None:
        adapter, model, expected, data = self._trained(tmp_path)
        batch = data.images[data.splits["test"]].astype(np.float32) / 255.0
        got = adapter.predict_loaded(model, self.make_spec().preprocessing(self.image_size), batch)
        np.testing.assert_allclose(got, expected, atol=self.reload_tolerance)

    def test_truncated_augmented_trial_round_trips(self, tmp_path: Path) -> None:
        """A trial cut at half the blocks, trained on mirrored views too, rebuilds to the same predictions."""
        adapter, model, expected, data = self._trained(tmp_path, cut_fraction=0.5, augment="hflip")
        batch = data.images[data.splits["test"]].astype(np.float32) / 255.0
        got = adapter.predict_loaded(model, self.make_spec().preprocessing(self.image_size), batch)
        np.testing.assert_allclose(got, expected, atol=self.reload_tolerance)

    def test_export_parity_for_every_format(self, tmp_path: Path) -> None:
        adapter, model, _, data = self._trained(tmp_path, cut_fraction=0.5)
        preprocessing = self.make_spec().preprocessing(self.image_size)
        batch = data.images[:6].astype(np.float32) / 255.0
        reference = adapter.predict_loaded(model, preprocessing, batch)
        for fmt in adapter.export_formats:
            out = tmp_path / fmt
            out.mkdir()
            model_file = adapter.export(model, preprocessing, fmt, out)
            if fmt not in adapter.safe_formats:  # a format that can run code on load needs the caller's trust
                try:
                    adapter.load_exported(out, fmt, model_file)
                except UserError:
                    pass
                else:
                    raise AssertionError(f"{fmt} can run code on load, yet load_exported opened it untrusted")
            exported = adapter.load_exported(out, fmt, model_file, trusted=True)
            np.testing.assert_allclose(exported.predict(batch), reference, atol=self.export_tolerance, err_msg=fmt)

    def test_load_names_a_damaged_weights_file(self, tmp_path: Path) -> None:
        """A truncated or garbled saved weights file is the user's problem to fix: UserError naming it."""
        adapter, session, data = self.session()
        session.set_phase(Phase.HEAD)
        session.save(tmp_path / "trial")
        weights = max((p for p in (tmp_path / "trial").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        intact = weights.read_bytes()
        for damaged in (intact[: len(intact) // 2], b"not a weights file"):
            weights.write_bytes(damaged)
            try:
                adapter.load(self.make_spec(), tmp_path / "trial", data.num_classes, self.config())
            except UserError as exc:
                assert weights.name in str(exc), str(exc)
            else:
                raise AssertionError(f"load accepted a damaged {weights.name}")

    def test_features_up_to_block_k(self) -> None:
        adapter, spec, data = self.make_adapter(), self.make_spec(), self.make_table()
        top = adapter.block_features(spec, data, len(spec.blocks))
        assert top.shape == (len(data.labels), spec.feature_dim)
        middle = adapter.block_features(spec, data, 1)
        assert middle.shape[0] == len(data.labels) and np.isfinite(middle).all()
        np.testing.assert_allclose(adapter.block_features(spec, data, 1), middle, atol=1e-6)

    def test_determinism_under_a_fixed_seed(self) -> None:
        results = []
        for _ in range(2):
            _, session, _ = self.session(freeze_fraction=0.5)
            session.set_phase(Phase.HEAD)
            session.train_epoch()
            session.set_phase(Phase.FINETUNE)
            session.train_epoch()
            results.append(session.predict_split("val"))
        np.testing.assert_allclose(results[0], results[1], atol=self.determinism_tolerance)
