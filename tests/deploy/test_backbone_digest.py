"""A trial records a digest of the pretrained weights it trained on; a factory that ignores pretrained=True
fails its trial; export and the report refuse to rebuild a trial onto other weights; old trials still export."""

from __future__ import annotations

import json

import optuna
import pytest

from automl_tl.cli import main
from automl_tl.errors import UserError
from automl_tl.storage.urls import storage_url

# A tiny torch backbone whose "pretrained" weights are a fixed seed; SEEDING is replaced per test.
PLUGIN = '''
import torch
from torch import nn

from automl_tl.hookspecs import hookimpl
from automl_tl.types import BackboneSpec, WeightsInfo


def build(pretrained):
    if pretrained:
        SEEDING
    model = nn.Module()
    model.features = nn.Sequential(*[nn.Sequential(nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1), nn.BatchNorm2d(8),
                                                   nn.ReLU()) for i in range(3)])
    return model


@hookimpl
def register_backbones(register):
    """One seeded stand-in for a pretrained backbone."""
    register(BackboneSpec(name="seeded_cnn", framework="torch", factory=build,
                          blocks=("features.0", "features.1", "features.2"), feature_dim=8,
                          weights=WeightsInfo(source="a fixed seed", is_available=lambda: True)))
'''
SEARCH = ["--backbones", "seeded_cnn", "--trials", "1", "--epochs", "1", "--image-size", "16", "--no-smart-start"]


def plugin_file(tmp_path, name: str, seeding: str):
    path = tmp_path / name
    path.write_text(PLUGIN.replace("SEEDING", seeding))
    return str(path)


def only_trial(name: str) -> optuna.trial.FrozenTrial:
    return optuna.load_study(study_name=name, storage=storage_url(name, None)).trials[0]


def trial_json(isolated_studies, name: str):
    return next((isolated_studies / name).glob("*/trial-0000/trial.json"))


@pytest.fixture
def searched(small_sample, tmp_path, isolated_studies):
    """A one-trial study "dg" of seeded_cnn with seed 1234."""
    plugin = plugin_file(tmp_path, "seeded.py", "torch.manual_seed(1234)")
    assert main(["search", str(small_sample), "--study", "dg", "--plugin", plugin, *SEARCH]) == 0
    return plugin


def test_a_trial_records_the_digest_of_the_weights_it_trained_on(searched, isolated_studies):
    from automl_tl.plugin.manager import load_plugins
    from automl_tl_torch.adapter import TorchAdapter

    trial = only_trial("dg")
    meta = json.loads(trial_json(isolated_studies, "dg").read_text())
    spec = load_plugins(plugin_files=[searched]).backbone("seeded_cnn")
    assert len(meta["backbone_digest"]) == 64
    assert trial.user_attrs["backbone_digest"] == meta["backbone_digest"] == TorchAdapter().backbone_digest(spec)


def test_export_refuses_other_pretrained_weights_than_the_trial_trained_on(searched, tmp_path, capsys):
    other = plugin_file(tmp_path, "reseeded.py", "torch.manual_seed(999)")  # same name, other weights
    capsys.readouterr()
    code = main(["export", "dg", "--format", "onnx", "-o", str(tmp_path / "out"), "--plugin", other])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "other pretrained weights" in err and "seeded_cnn" in err
    assert not (tmp_path / "out").exists(), "nothing is written"
    assert main(["export", "dg", "--format", "onnx", "-o", str(tmp_path / "same"), "--plugin", searched]) == 0


def test_the_report_refuses_other_pretrained_weights_too(searched, tmp_path, small_sample):
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.report.best_model import evaluate_study_best

    study = optuna.load_study(study_name="dg", storage=storage_url("dg", None))
    other = load_plugins(plugin_files=[plugin_file(tmp_path, "reseeded.py", "torch.manual_seed(999)")])
    with pytest.raises(UserError, match="other pretrained weights"):
        evaluate_study_best(other, study, None, str(small_sample), [])
    assert evaluate_study_best(load_plugins(plugin_files=[searched]), study, None, str(small_sample), []).trial == 0


def test_a_trial_saved_before_digests_still_exports(searched, tmp_path, isolated_studies):
    path = trial_json(isolated_studies, "dg")
    meta = json.loads(path.read_text())
    del meta["backbone_digest"]
    path.write_text(json.dumps(meta))
    assert main(["export", "dg", "--format", "onnx", "-o", str(tmp_path / "out"), "--plugin", searched]) == 0


def test_a_factory_that_ignores_pretrained_fails_its_trial_naming_the_backbone(small_sample, tmp_path):
    plugin = plugin_file(tmp_path, "random.py", "pass  # new random weights on every build")
    main(["search", str(small_sample), "--study", "rnd", "--plugin", plugin, *SEARCH])
    trial = only_trial("rnd")
    assert trial.state.name == "FAIL"
    assert "'seeded_cnn'" in trial.user_attrs["fail_reason"]
    assert "ignores pretrained=True" in trial.user_attrs["fail_reason"]


def test_keras_builds_must_agree_and_export_checks_the_digest(tmp_path):
    pytest.importorskip("keras", reason="the keras extra is not installed")
    import dataclasses

    from automl_tl.deploy.export import check_backbone_weights
    from automl_tl.testing import synthetic_table
    from automl_tl.training.engine import run_trial
    from automl_tl.types import TrialConfig
    from automl_tl_keras.adapter import KerasAdapter
    from tests.support.sample_plugins.keras_inline import _tiny_keras_model, tiny_keras_spec

    spec, data = tiny_keras_spec(), synthetic_table(n_per_split=8, size=16, classes=2)
    config = TrialConfig(backbone=spec.name, freeze_fraction=1.0, head_units=0, head_dropout=0.0, lr=1e-3,
                         finetune_lr_ratio=0.1, switch_epoch=1, epochs=1, image_size=16)
    adapter = KerasAdapter()
    digest = adapter.backbone_digest(spec)
    assert digest == KerasAdapter().backbone_digest(spec), "the same weights give the same digest in any process"
    run_trial(adapter, spec, config, data, save_to=tmp_path / "trial")
    meta = {"trial": 0, "backbone_digest": digest}

    rebuilt = KerasAdapter()
    rebuilt.load(spec, tmp_path / "trial", data.num_classes, config)
    check_backbone_weights(rebuilt, spec, meta)  # the same weights: accepted

    def other_weights(pretrained):
        import keras

        model = _tiny_keras_model(pretrained)
        model.get_layer("b0_conv").kernel.assign(keras.ops.zeros_like(model.get_layer("b0_conv").kernel))
        return model

    changed = dataclasses.replace(spec, factory=other_weights)
    other = KerasAdapter()
    other.load(changed, tmp_path / "trial", data.num_classes, config)
    with pytest.raises(UserError, match="other pretrained weights"):
        check_backbone_weights(other, changed, meta)

    def random_weights(pretrained):
        return _tiny_keras_model(False)  # ignores pretrained: unseeded initialisers

    ignoring = dataclasses.replace(spec, factory=random_weights)
    fresh = KerasAdapter()
    fresh.backbone_digest(ignoring)
    with pytest.raises(UserError, match="ignores pretrained=True"):
        fresh.start_trial(ignoring, config, data)
