"""Shared fixtures: isolated study folders, a small slice of the real sample, an inline stub plugin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torchvision  # noqa: F401  (torchvision before anything that might pull in tensorflow)

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers on two cores: one thread each, no oversubscription
    os.environ.setdefault("AUTOML_TL_THREADS", "1")

TESTS = Path(__file__).parent
STUB_PLUGIN = str(TESTS / "support" / "sample_plugins" / "stub_plugin.py")
# Tests that compare wall-clock seconds with a deadline, a rung or a prediction: `make test` runs them alone after
# the parallel part (-m serial), so that the other worker's load does not decide them.
SERIAL = (
    "tests/search/test_deadline_search.py",
    "tests/search/test_pruning_by_seconds.py",
    "tests/search/test_search_costs.py",
    "tests/search/test_cost.py",
    "tests/training/test_deadline_engine.py",
    "tests/training/test_deadline_cv.py",
    "tests/runtime/test_deadline.py",
    "tests/cli/test_search_time_summary.py",
    "tests/distributed/test_distributed.py::test_four_workers_finish_exactly_the_budget",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the timing-sensitive tests ``serial`` (see SERIAL)."""
    for item in items:
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def shared_activation_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One activation cache for the whole test run (keys keep tests apart), never the user's."""
    return tmp_path_factory.mktemp("activations")


@pytest.fixture(autouse=True)
def isolated_studies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_activation_cache: Path) -> Path:
    """Every test gets its own studies folder and never touches the user's studies or cache."""
    studies = tmp_path / "studies"
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(studies))
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(shared_activation_cache))
    monkeypatch.delenv("AUTOML_TL_LOAD_PLUGINS", raising=False)
    # Small test samples would be cross-validated by default (K + 1 trainings a trial); tests of --cv ask for it.
    monkeypatch.setenv("AUTOML_TL_CV", "off")
    return studies


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 real Animal-MNIST images per class, as folder-per-class PNGs."""
    from automl_tl.data.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample") / "animal_mnist", limit_per_class=20, progress=False)


@pytest.fixture(scope="session")
def medium_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 real Animal-MNIST images per class, enough to learn something in seconds."""
    from automl_tl.data.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample") / "animal_mnist", limit_per_class=60, progress=False)


@pytest.fixture(scope="session")
def small_cnn_exports(small_sample: Path, shared_activation_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real one-trial torch study of the from-scratch small_cnn, made once per run: ``root/studies``
    holds the study "mf", ``root/onnx`` and ``root/torchscript`` its two exports. Copy before changing."""
    from automl_tl.cli import main

    root = tmp_path_factory.mktemp("small_cnn_exports")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOML_TL_STUDIES", str(root / "studies"))
        patch.setenv("AUTOML_TL_CV", "off")
        patch.setenv("AUTOML_TL_CACHE_DIR", str(shared_activation_cache))
        assert main(["search", str(small_sample), "--study", "mf", "--trials", "1", "--epochs", "1",
                     "--image-size", "16", "--backbones", "small_cnn", "--seed", "0"]) == 0
        for fmt in ("onnx", "torchscript"):
            assert main(["export", "mf", "--format", fmt, "-o", str(root / fmt)]) == 0
    return root


@pytest.fixture
def stub_plugins():
    """Plugins with the built-ins plus the stub framework registered in code (no entry point)."""
    import importlib.util

    from automl_tl.plugin.manager import load_plugins

    spec = importlib.util.spec_from_file_location("stub_plugin_inline", STUB_PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return load_plugins(extra=[("stub", module)])


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the test run (see postgres_server.py); skipped only where none is installed."""
    from tests.support.postgres_server import PostgresServer, postgres_bin

    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed here; `make test` installs it from Debian's packages (make postgres)")
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """A fresh database on the shared server for each test."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    return postgres_server.create_database(name)
