"""``predict`` with an ONNX export starts fast: it imports neither a training framework nor Optuna."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import write_image

HEAVY = ("optuna", "tensorflow", "keras", "torch", "torchvision")
_PROGRAM = """
import json, sys
from automl_tl.cli import main
code = main(["predict", sys.argv[1], sys.argv[2], "--json"])
print(json.dumps({"code": code, "imported": [name for name in sys.argv[3:] if name in sys.modules]}))
"""


def test_predicting_with_an_onnx_export_imports_no_training_framework(small_cnn_exports: Path, tmp_path: Path) -> None:
    image = write_image(tmp_path / "one.png", size=(20, 20))
    env = {name: value for name, value in os.environ.items() if name != "AUTOML_TL_LOAD_PLUGINS"}  # every plugin
    result = subprocess.run([sys.executable, "-c", _PROGRAM, str(small_cnn_exports / "onnx"), str(image), *HEAVY],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    said = json.loads(result.stdout.strip().splitlines()[-1])
    predictions = json.loads("\n".join(result.stdout.strip().splitlines()[:-1]))
    assert said["code"] == 0 and predictions[0]["top"], result.stdout
    assert said["imported"] == [], "predict with an ONNX model needs none of these"


@pytest.mark.slow
def test_the_import_hook_still_puts_torchvision_before_tensorflow() -> None:
    pytest.importorskip("tensorflow", reason="the keras extra is not installed")
    pytest.importorskip("torchvision", reason="torchvision is not installed")
    program = ("import sys\nfrom automl_tl.plugin.manager import load_plugins\nload_plugins()\n"
               "assert 'torchvision' not in sys.modules\nimport tensorflow\nprint('torchvision' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "True"
