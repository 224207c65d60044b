"""Keras through the same CLI: search, export to .keras and SavedModel, predict, evaluate; both
frameworks in one study and one process; clear errors where TensorFlow is absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

from automl_tl.cli import main  # noqa: E402
from automl_tl.storage.urls import storage_url  # noqa: E402

pytestmark = pytest.mark.slow
ARGS = ["--epochs", "2", "--image-size", "32", "--seed", "3"]


def test_keras_search_export_predict_and_evaluate(small_sample, tmp_path, capsys):
    assert main(["search", str(small_sample), "--framework", "keras", "--backbones", "MobileNetV2", "--trials", "2",
                 "--study", "k", *ARGS]) == 0
    study = optuna.load_study(study_name="k", storage=storage_url("k", None))
    best = max((t for t in study.get_trials() if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert best.user_attrs["framework"] == "keras"
    capsys.readouterr()
    for fmt in ("keras", "savedmodel"):
        out = tmp_path / fmt
        assert main(["export", "k", "--format", fmt, "-o", str(out), "--flip", "off"]) == 0
        assert json.loads((out / "metadata.json").read_text())["framework"] == "keras"
        capsys.readouterr()
        trust = ["--trust-model"] if fmt == "savedmodel" else []  # a SavedModel can run code on load
        assert main(["evaluate", str(out), str(small_sample), "--json", *trust]) == 0
        evaluated = json.loads(capsys.readouterr().out)
        assert abs(evaluated["accuracy"] - best.user_attrs["test_accuracy"]) <= 0.01
    assert main(["predict", str(tmp_path / "keras"), str(small_sample / "cat"), "--json", "--top", "1"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["label"] in study.user_attrs["class_names"]
    assert main(["export", "k", "--format", "onnx", "-o", str(tmp_path / "bad")]) == 2
    assert "keras, savedmodel" in capsys.readouterr().err

    # Both trials averaged in one .keras graph (loaded back in safe mode), checked against the members' own models.
    assert main(["export", "k", "--format", "keras", "-o", str(tmp_path / "ensemble"), "--ensemble", "4", "--flip", "off"]) == 0
    capsys.readouterr()
    metadata = json.loads((tmp_path / "ensemble" / "metadata.json").read_text())
    assert sum(metadata["ensemble"]["weights"]) == 4 and metadata["parity"]["max_abs_difference"] < 1e-3
    assert main(["evaluate", str(tmp_path / "ensemble"), str(small_sample), "--json"]) == 0
    assert abs(json.loads(capsys.readouterr().out)["accuracy"] - metadata["ensemble"]["test_accuracy"]) <= 0.01


def _run(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)


def test_both_frameworks_share_one_study_in_one_process(small_sample, isolated_studies):
    result = subprocess.run(
        [sys.executable, "-m", "automl_tl", "search", str(small_sample), "--framework", "all", "--trials", "4",
         "--study", "both", "--backbones", "mobilenet_v2,MobileNetV2", *ARGS],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, AUTOML_TL_STUDIES=str(isolated_studies)),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    study = optuna.load_study(study_name="both", storage=f"sqlite:///{isolated_studies / 'both.db'}")
    choices = study.get_trials()[0].distributions["backbone"].choices
    assert set(choices) == {"mobilenet_v2", "MobileNetV2"}
    frameworks = {t.user_attrs.get("framework") for t in study.get_trials() if t.state.name != "FAIL"}
    assert frameworks <= {"torch", "keras"} and len(study.get_trials()) == 4


def test_a_plugin_that_imports_tensorflow_first_cannot_crash_a_torch_run(small_sample, tmp_path, isolated_studies):
    plugin = tmp_path / "tf_first.py"
    plugin.write_text("import tensorflow  # imported at plugin load, before any torch code\n"
                      "import torch\n")
    result = subprocess.run(
        [sys.executable, "-m", "automl_tl", "search", str(small_sample), "--plugin", str(plugin), "--trials", "1",
         "--backbones", "mobilenet_v2", "--study", "order", *ARGS],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, AUTOML_TL_STUDIES=str(isolated_studies)),
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_user_code_that_imported_tensorflow_first_gets_an_error_not_a_segfault():
    result = _run("import tensorflow\n"
                  "from automl_tl.plugin.manager import load_plugins\n"
                  "load_plugins()\n")
    assert result.returncode == 1 and "Segmentation" not in result.stderr
    assert "TensorFlow was imported before torchvision" in result.stderr


def test_without_tensorflow_the_keras_framework_is_a_clear_error(small_sample, capsys, monkeypatch):
    from automl_tl_keras.adapter import KerasAdapter

    monkeypatch.setattr(KerasAdapter, "is_installed", lambda self: False)
    assert main(["search", str(small_sample), "--framework", "keras", "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'automl-tl[keras]'" in err and "Traceback" not in err
    assert main(["backbones", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert "mobilenet_v2" in names and "MobileNetV2" not in names


BLOCK_TENSORFLOW = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_torch_exports_predict_without_tensorflow(small_sample, tmp_path, isolated_studies):
    import tests.support.sample_plugins.torch_inline as torch_inline

    plugin = ["--plugin", torch_inline.__file__]
    assert main(["search", str(small_sample), "--trials", "1", "--epochs", "1", "--image-size", "16",
                 "--backbones", "tiny_cnn", "--study", "tiny", *plugin]) == 0
    out = tmp_path / "onnx"
    assert main(["export", "tiny", "--format", "onnx", "-o", str(out), *plugin]) == 0
    code = BLOCK_TENSORFLOW + (
        "from automl_tl.cli import main\n"
        f"raise SystemExit(main(['predict', {str(out)!r}, {str(small_sample / 'cat')!r}, '--json', "
        f"'--plugin', {torch_inline.__file__!r}]))\n"
    )
    result = _run(code, {"AUTOML_TL_STUDIES": str(isolated_studies)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"probability"' in result.stdout
    assert "blocked" not in result.stderr, "nothing may even try to import TensorFlow"
