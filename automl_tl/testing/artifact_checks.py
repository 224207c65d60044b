"""Conformance checks of what a trial leaves behind and what the search reads: saved weights, exports,
features up to block k, and pretrained weights that are the same on every build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_tl.data.images import to_model_input
from automl_tl.errors import UserError
from automl_tl.types import FrameworkAdapter, ImageTable

from .base import ConformanceBase
from .verdicts import fail, refusals_named, require, require_close

__all__ = ["ArtifactChecks"]

FEATURE_SEED = 1234  # seeds both from-scratch builds the features check compares


class ArtifactChecks(ConformanceBase):
    """What a trained trial saves and exports, and the features the search's smart start reads."""

    def _trained(self, tmp_path: Path, **changes: Any) -> tuple[FrameworkAdapter, Any, np.ndarray, ImageTable]:
        """A trial trained for two epochs, saved and loaded back; with its own test probabilities."""
        changes = {"head_units": 8, **changes}
        adapter, session, data = self.session(**changes)
        self.train(session, self.two_phases())
        expected = session.predict_split("test")
        session.save(tmp_path / "trial")
        with refusals_named(self.backbone, "load (of the trial it just saved)"):
            model = adapter.load(self.make_spec(), tmp_path / "trial", data.num_classes, self.config(**changes))
        return adapter, model, expected, data

    def _check_round_trip(self, adapter: FrameworkAdapter, model: Any, expected: np.ndarray, data: ImageTable,
                          what: str) -> np.ndarray:
        """The reloaded model's test probabilities, which must be the trial's own."""
        batch = to_model_input(data.images[data.splits["test"]])
        got = adapter.predict_loaded(model, self.make_spec().preprocessing(self.image_size), batch)
        require_close(self.backbone, f"the reloaded model's output on the test split ({what})", got, expected,
                      self.cached_value_tolerance(), f"the trial's own (from activations cached as {self.cache_dtype})")
        return np.asarray(got)

    def test_save_and_load_round_trip(self, tmp_path: Path) -> None:
        """A saved trial, loaded back, predicts what the trial did."""
        self._check_round_trip(*self._trained(tmp_path), "save, then load")

    def test_export_parity_for_every_format(self, tmp_path: Path) -> None:
        """A trial cut at half the blocks and trained on mirrored views too: it rebuilds to the trial's own
        predictions, and every export predicts what the rebuilt model and the trial do."""
        adapter, model, expected, data = self._trained(tmp_path, cut_fraction=0.5, augment="hflip")
        reloaded = self._check_round_trip(adapter, model, expected, data, "cut_fraction=0.5, augment='hflip'")
        preprocessing = self.make_spec().preprocessing(self.image_size)
        batch = to_model_input(data.images[data.splits["test"]])
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
                    fail(self.backbone, f"the {fmt} export can run code on load (it is not in safe_formats), yet "
                                        f"load_exported opened it without trusted=True")
            exported = adapter.load_exported(out, fmt, model_file, trusted=True)
            got = exported.predict(batch)
            require_close(self.backbone, f"the {fmt} export's output", got, reloaded, self.export_tolerance,
                          "the reloaded model's (predict_loaded)")
            require_close(self.backbone, f"the {fmt} export's output", got, expected,
                          self.export_tolerance + self.cached_value_tolerance(), "the trial's own on the test split")

    def test_load_names_a_damaged_weights_file(self, tmp_path: Path) -> None:
        """A truncated or garbled saved weights file is the user's problem to fix: UserError naming it."""
        adapter, session, data = self.session()
        session.set_phase(self.first_phase())
        session.save(tmp_path / "trial")
        weights = max((p for p in (tmp_path / "trial").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        intact = weights.read_bytes()
        for how, damaged in (("truncated", intact[: len(intact) // 2]), ("garbled", b"not a weights file")):
            weights.write_bytes(damaged)
            try:
                adapter.load(self.make_spec(), tmp_path / "trial", data.num_classes, self.config())
            except UserError as exc:
                require(weights.name in str(exc), self.backbone,
                        f"load of a {how} {weights.name} raised a UserError that does not name the file: {exc}")
            else:
                fail(self.backbone, f"load accepted a {how} {weights.name} instead of raising UserError naming it")

    def test_features_up_to_block_k(self) -> None:
        """``block_features(k)`` is the backbone's own output after block k, pooled: compared with the
        framework's model run block by block (for a from-scratch backbone, both builds seeded alike)."""
        adapter, spec, data = self.make_adapter(), self.make_spec(), self.make_table()
        n = len(spec.blocks)
        depths = sorted({max(1, n // 2), n})  # a middle block (indexing) and the top (feature_dim, post-pooling)
        got = {}
        for k in depths:
            self.seed_framework(FEATURE_SEED)
            with refusals_named(spec.name, f"block_features(k={k})"):
                got[k] = np.asarray(adapter.block_features(spec, data, k))
        self.seed_framework(FEATURE_SEED)
        want = self.reference_features(spec, data, depths)
        top = (len(data.labels), spec.feature_dim)
        require(got[n].shape == top, spec.name, f"block_features(k={n}) (every block) has shape {got[n].shape}, "
                                                f"not (images, spec.feature_dim) = {top}")
        for k in depths:
            scale = max(1.0, float(np.abs(want[k]).max()))
            require_close(spec.name, f"block_features(k={k})", got[k], want[k], self.feature_tolerance() * scale,
                          f"the model's own block-{k} output (pooled)")

    def test_pretrained_builds_give_the_same_features(self) -> None:
        """Two adapters build the pretrained backbone separately: a factory that ignores ``pretrained=True``
        (new random weights every build) would train on weights that no export can rebuild."""
        spec, data = self.make_spec(), self.make_table()
        if not spec.pretrained:
            pytest.skip("from scratch: every build is new random weights")
        n = len(spec.blocks)
        builds = []
        for _ in range(2):
            with refusals_named(spec.name, f"block_features(k={n})"):
                builds.append(np.asarray(self.make_adapter().block_features(spec, data, n)))
        require(np.array_equal(builds[0], builds[1]), spec.name,
                "two builds with pretrained=True give different features: spec.factory(True) must load the same "
                "pretrained weights every time (it seems to ignore pretrained=True)")
