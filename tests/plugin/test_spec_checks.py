"""Backbone specs and adapters are checked when registered, and where the adapter builds the model:
every mistake is a UserError naming the plugin or the backbone and what to write instead."""

from __future__ import annotations

import dataclasses
import types

import pytest

import tests.support.sample_plugins.torch_inline as torch_inline
from automl_tl.cli import main
from automl_tl.errors import UserError
from automl_tl.hookspecs import hookimpl
from automl_tl.plugin.manager import load_plugins
from automl_tl.plugin.spec_checks import BackboneSpecError, check_feature_dim, find_blocks


def registering(spec):
    return types.SimpleNamespace(register_backbones=hookimpl(lambda register: register(spec)))


def load_with(**changes):
    return load_plugins(extra=[("author", registering(dataclasses.replace(torch_inline.tiny_spec(), **changes)))],
                        entry_points=False)


@pytest.mark.parametrize("changes, says", [
    (dict(mean=0.5), r"mean=0\.5, which is not three finite numbers.*one per RGB channel"),
    (dict(std=(0.2, 0.2)), r"std=\(0\.2, 0\.2\), which is not three"),
    (dict(std=(0.2, 0.0, 0.2)), r"every std must be above 0"),
    (dict(mean=(123.7, 116.3, 103.5)), r"0\.\.1 \(pixel / 255\).*std=\(1/255"),
    (dict(blocks=()), r"no blocks"),
    (dict(blocks="features.0"), r"blocks='features\.0': blocks is a tuple of block names"),
    (dict(blocks=("features.0", "features.1", "features.0")), r"'features\.0' more than once"),
    (dict(blocks=("features.0", "")), r"every block is a non-empty name"),
    (dict(feature_dim=0), r"feature_dim=0: give the width"),
    (dict(feature_dim="8"), r"feature_dim='8'"),
    (dict(factory=None), r"factory=None, which cannot be called"),
    (dict(framework=""), r"framework='': name the framework adapter"),
    (dict(crop_pct=0.2), r"crop_pct=0\.2"),
    (dict(interpolation="nearest"), r"interpolation='nearest': use one of bilinear, bicubic"),
    (dict(name="a,b"), r"a comma"),
])
def test_register_backbones_a_broken_spec_is_refused_naming_plugin_backbone_and_fix(changes, says):
    with pytest.raises(BackboneSpecError, match=says) as info:
        load_with(**changes)
    message = str(info.value)
    assert "Plugin 'author'" in message and ("'tiny_cnn'" in message or "a,b" in message)


def test_every_problem_of_a_spec_is_named_at_once():
    with pytest.raises(BackboneSpecError) as info:
        load_with(mean=0.5, feature_dim=-1)
    assert "mean=0.5" in str(info.value) and "feature_dim=-1" in str(info.value)


def test_registering_something_that_is_not_a_spec_says_what_register_takes():
    module = types.SimpleNamespace(register_backbones=hookimpl(lambda register: register({"name": "x"})))
    with pytest.raises(UserError, match=r"Plugin 'dicts'.*register\(\) in register_backbones with dict.*BackboneSpec"):
        load_plugins(extra=[("dicts", module)], entry_points=False)


def test_a_framework_adapter_missing_members_is_refused_naming_them():
    class HalfAdapter:
        name = "half"

        def is_installed(self):
            return True

    module = types.SimpleNamespace(register_frameworks=hookimpl(lambda register: register(HalfAdapter())))
    with pytest.raises(UserError, match=r"Plugin 'half'.*HalfAdapter.*no block_features.*start_trial"):
        load_plugins(extra=[("half", module)], entry_points=False)


def test_a_dataset_adapter_without_discover_is_refused():
    class ClaimsOnly:
        name = "claims_only"

        def claims(self, location):
            return False

    module = types.SimpleNamespace(register_datasets=hookimpl(lambda register: register(ClaimsOnly())))
    with pytest.raises(UserError, match=r"dataset adapter \(ClaimsOnly\) with no discover"):
        load_plugins(extra=[("claims", module)], entry_points=False)


def test_every_built_in_backbone_passes_the_registration_checks():
    plugins = load_plugins()
    assert {"mobilenet_v2", "small_cnn"} <= set(plugins.backbones)


def test_a_wrong_block_name_is_named_with_the_closest_real_ones_where_torch_builds_the_model():
    from automl_tl_torch.model import build_block_stack

    spec = dataclasses.replace(torch_inline.tiny_spec(), blocks=("features.0", "features.1", "featurs.2"))
    with pytest.raises(BackboneSpecError, match=r"block 'featurs\.2' of backbone 'tiny_cnn' names nothing.*"
                                                r"did you mean 'features\.2'"):
        build_block_stack(spec, pretrained=False)


def test_a_wrong_feature_dim_says_which_number_is_right():
    from automl_tl_torch.model import build_block_stack

    spec = dataclasses.replace(torch_inline.tiny_spec(), feature_dim=1280)
    with pytest.raises(BackboneSpecError, match=r"'tiny_cnn' declares feature_dim=1280, but its built model gives 8"
                                                r".*Set feature_dim=8"):
        build_block_stack(spec, pretrained=False)
    assert build_block_stack(spec, pretrained=False, depth=2) is not None  # a truncated build is measured anyway


def test_find_blocks_names_a_keras_style_cut_point_that_names_no_layer():
    layers = {"block_1_add": "t1", "out_relu": "t2"}

    def tensor(name):
        return layers[name.removeprefix("input:")]

    assert find_blocks(["block_1_add", "input:out_relu"], tensor, lambda: layers) == ["t1", "t2"]
    with pytest.raises(BackboneSpecError, match=r"block 'input:out_rleu' names nothing.*did you mean 'out_relu'"):
        find_blocks(["block_1_add", "input:out_rleu"], tensor, lambda: layers)


def test_a_feature_dim_that_cannot_be_measured_is_left_to_the_trial():
    def unmeasurable():
        raise RuntimeError("input too small")

    check_feature_dim(dataclasses.replace(torch_inline.tiny_spec(), name="unmeasured", feature_dim=99), unmeasurable)


WRONG_BLOCKS_PLUGIN = '''
import dataclasses
from automl_tl.hookspecs import hookimpl
from tests.support.sample_plugins.torch_inline import tiny_spec


@hookimpl
def register_backbones(register):
    register(dataclasses.replace(tiny_spec("typo_cnn"), blocks=("features.0", "features.1", "features.2", "featurez.3")))
'''


def test_search_with_a_wrong_block_name_is_a_clear_error_not_a_traceback(small_sample, tmp_path, capsys):
    plugin = tmp_path / "typo_plugin.py"
    plugin.write_text(WRONG_BLOCKS_PLUGIN)
    code = main(["search", str(small_sample), "--plugin", str(plugin), "--backbones", "typo_cnn", "--trials", "1",
                 "--epochs", "1", "--image-size", "16", "--study", "typo"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "'featurez.3' of backbone 'typo_cnn' names nothing" in err and "Traceback" not in err


def test_a_keras_cut_point_that_names_no_layer_is_named_with_the_closest_layers():
    pytest.importorskip("tensorflow")
    from automl_tl_keras.model import cut_tensors, keras

    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(4, 3, name="stem_conv")(inputs)
    model = keras.Model(inputs, keras.layers.ReLU(name="stem_relu")(hidden))
    assert len(cut_tensors(model, ["stem_conv", "<output>"])) == 2
    with pytest.raises(BackboneSpecError, match=r"block 'input:stem_rleu' names nothing.*did you mean 'stem_relu'"):
        cut_tensors(model, ["stem_conv", "input:stem_rleu"])
