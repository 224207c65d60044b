"""Pretrained weights that fail to arrive (no network, an HTTP error, a wrong hash, a damaged file) are one
clear error naming the backbone, the cache and what to do, never a traceback; and the plugin author's guide's
backbone example does not claim weights that are not here. No network is used: downloads are made to fail."""

from __future__ import annotations

import email.message
import io
import json
import urllib.error

import pytest
import torch.hub

from automl_tl.cli import main
from automl_tl.errors import UserError
from automl_tl.plugin.manager import load_plugins
from automl_tl_torch.adapter import TorchAdapter
from tests.plugin.test_plugin_docs import backbone_plugin_example

# The guide's first example as it once stood: weights declared always available.
ALWAYS_AVAILABLE = '''
from automl_tl.hookspecs import hookimpl
from automl_tl.types import BackboneSpec, WeightsInfo


def build(pretrained):
    from torchvision.models import resnet18
    return resnet18(weights="IMAGENET1K_V1" if pretrained else None)


@hookimpl
def register_backbones(register):
    """resnet18 under another name, its weights said to be here whatever the cache holds."""
    register(BackboneSpec(
        name="resnet_optimist", framework="torch", factory=build,
        blocks=("conv1+bn1+relu+maxpool", "layer1", "layer2", "layer3", "layer4"), feature_dim=512,
        weights=WeightsInfo(source="torchvision IMAGENET1K_V1", is_available=lambda: True),
    ))
'''


class FakeResponse(io.BytesIO):
    """What urlopen returns, serving bytes that are not the weights."""

    def info(self) -> email.message.Message:
        return email.message.Message()


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def optimist(tmp_path):
    plugin = tmp_path / "optimist.py"
    plugin.write_text(ALWAYS_AVAILABLE)
    return plugin


def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "urlopen", refuse)


def assert_clear(message: str, home) -> None:
    assert "resnet_optimist" in message, "the error names the backbone"
    assert str(home / "hub" / "checkpoints") in message and "$TORCH_HOME/hub/checkpoints/" in message
    assert "network" in message


def test_no_network_is_a_clear_error_naming_backbone_and_cache(empty_torch_home, optimist, monkeypatch):
    no_network(monkeypatch)
    spec = load_plugins(plugin_files=[optimist]).backbone("resnet_optimist")
    with pytest.raises(UserError) as raised:
        TorchAdapter().prototype(spec)
    assert_clear(str(raised.value), empty_torch_home)
    assert "URLError" in str(raised.value)


def test_a_download_with_the_wrong_hash_is_a_clear_error(empty_torch_home, optimist, monkeypatch):
    monkeypatch.setattr(torch.hub, "urlopen", lambda request: FakeResponse(b"<html>captive portal</html>"))
    spec = load_plugins(plugin_files=[optimist]).backbone("resnet_optimist")
    with pytest.raises(UserError) as raised:
        TorchAdapter().backbone_digest(spec)
    assert_clear(str(raised.value), empty_torch_home)
    assert "invalid hash value" in str(raised.value)
    assert not list((empty_torch_home / "hub" / "checkpoints").glob("*.pth")), "nothing half-downloaded is kept"


def test_a_damaged_cached_file_is_a_clear_error(empty_torch_home, optimist):
    from automl_tl_torch.weights import cached_file, weights_url

    damaged = cached_file(weights_url("resnet18", "IMAGENET1K_V1"))
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"PK\x03\x04 truncated")
    spec = load_plugins(plugin_files=[optimist]).backbone("resnet_optimist")
    with pytest.raises(UserError) as raised:
        TorchAdapter().block_features(spec, None, 1)  # fails while building, before any data is read
    assert_clear(str(raised.value), empty_torch_home)
    assert "delete it" in str(raised.value)


def test_search_without_network_says_so_without_a_traceback(empty_torch_home, optimist, monkeypatch, small_sample, capsys):
    no_network(monkeypatch)
    code = main(["search", str(small_sample), "--plugin", str(optimist), "--backbones", "resnet_optimist",
                 "--trials", "1", "--epochs", "1", "--image-size", "16", "--study", "offline"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "resnet_optimist" in err and "could not be downloaded" in err


def test_a_trial_whose_download_fails_records_the_clear_reason(empty_torch_home, optimist, monkeypatch, small_sample):
    import optuna

    from automl_tl.storage.urls import storage_url

    no_network(monkeypatch)
    main(["search", str(small_sample), "--plugin", str(optimist), "--backbones", "resnet_optimist", "--trials", "1",
          "--epochs", "1", "--image-size", "16", "--study", "offline", "--no-smart-start"])
    trial = optuna.load_study(study_name="offline", storage=storage_url("offline", None)).trials[0]
    assert trial.state.name == "FAIL"
    assert_clear(trial.user_attrs["fail_reason"], empty_torch_home)


def test_the_guide_example_says_its_weights_are_missing_when_they_are(empty_torch_home, tmp_path, monkeypatch, capsys):
    plugin = tmp_path / "guide_plugin.py"
    plugin.write_text(backbone_plugin_example())
    assert main(["backbones", "shufflenet*", "--json", "--plugin", str(plugin)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["name"], row["weights_available"]) for row in rows] == [("shufflenet_v2", False)]
    no_network(monkeypatch)
    with pytest.raises(UserError, match="shufflenet_v2"):
        TorchAdapter().prototype(load_plugins(plugin_files=[plugin]).backbone("shufflenet_v2"))


def test_a_factory_bug_is_not_called_a_download_failure(empty_torch_home):
    from automl_tl.types import BackboneSpec, WeightsInfo

    def broken(pretrained):
        raise AttributeError("module 'torchvision.models' has no attribute 'shufflenet_v9'")

    spec = BackboneSpec(name="broken", framework="torch", factory=broken, blocks=("a", "b"), feature_dim=8,
                        weights=WeightsInfo(source="nowhere", is_available=lambda: True))
    with pytest.raises(AttributeError):
        TorchAdapter().prototype(spec)


def test_keras_without_network_is_a_clear_error(monkeypatch):
    pytest.importorskip("keras", reason="the keras extra is not installed")
    import keras.src.utils.file_utils as file_utils

    from automl_tl_keras.adapter import KerasAdapter
    from automl_tl_keras.backbones import keras_backbones

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    spec = next(s for s in keras_backbones() if s.name == "MobileNetV3Small")  # not among the offline weights
    with pytest.raises(UserError) as raised:
        KerasAdapter().backbone_digest(spec)
    message = str(raised.value)
    assert "MobileNetV3Small" in message and "URL fetch failure" in message and "$KERAS_HOME/models/" in message
