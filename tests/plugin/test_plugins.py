"""The plugin manager: built-ins through entry points, inline and file plugins, errors, the allowlist."""

from __future__ import annotations

import dataclasses
import types

import pytest

import tests.support.sample_plugins.torch_inline as torch_inline
from automl_tl.cli import main
from automl_tl.errors import UserError
from automl_tl.hookspecs import hookimpl
from automl_tl.plugin.manager import LOAD_ENV, load_plugins
from tests.conftest import STUB_PLUGIN


def test_builtins_load_through_entry_points():
    plugins = load_plugins()
    assert "torch" in plugins.frameworks and "mobilenet_v2" in plugins.backbones
    assert plugins.backbones.owner("mobilenet_v2") == "torch"
    assert plugins.datasets.names() == ["csv", "folder"]
    assert "entry point" in plugins.sources["torch"]


def test_register_backbones_an_inline_plugin_adds_a_backbone():
    plugins = load_plugins(extra=[("inline", torch_inline)])
    spec = plugins.backbone("tiny_cnn")
    assert spec.framework == "torch" and plugins.backbones.owner("tiny_cnn") == "inline"


def test_register_frameworks_and_datasets_from_a_plugin_file(tmp_path, capsys):
    assert main(["plugins", "--json", "--plugin", STUB_PLUGIN]) == 0
    out = capsys.readouterr().out
    assert '"stub"' in out and "stub_net" in out


def test_register_datasets_a_plugin_adapter_claims_its_locations(tmp_path):
    class Claims:
        name = "anything"

        def claims(self, location):
            return location.endswith(".special")

        def discover(self, location):
            raise UserError("special adapter reached")

    module = types.SimpleNamespace(register_datasets=hookimpl(lambda register: register(Claims())))
    plugins = load_plugins(extra=[("special", module)])
    (tmp_path / "x.special").write_text("")
    with pytest.raises(UserError, match="special adapter reached"):
        plugins.dataset_for(str(tmp_path / "x.special")).discover("x")


def test_a_hook_without_a_spec_is_an_error():
    module = types.SimpleNamespace(register_backbonez=hookimpl(lambda register: None))
    with pytest.raises(UserError, match="register_backbonez"):
        load_plugins(extra=[("typo", module)])


def test_duplicate_backbone_names_name_both_plugins():
    with pytest.raises(UserError, match="'first'.*'second'"):
        load_plugins(extra=[("first", torch_inline), ("second", types.SimpleNamespace(
            register_backbones=hookimpl(lambda register: register(torch_inline.tiny_spec()))))])


def test_the_allowlist_limits_autoloading(monkeypatch):
    monkeypatch.setenv(LOAD_ENV, "datasets")
    plugins = load_plugins()
    assert "torch" not in plugins.frameworks and plugins.datasets.names() == ["csv", "folder"]
    monkeypatch.setenv(LOAD_ENV, "")
    assert len(load_plugins().datasets) == 0


def test_a_plugin_file_that_fails_to_import_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    assert main(["plugins", "--plugin", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.py" in err and "boom" in err and "Traceback" not in err


def test_trace_prints_each_hook_call(monkeypatch, capsys):
    monkeypatch.setenv("AUTOML_TL_TRACE_HOOKS", "1")
    load_plugins()
    assert "register_backbones -> plugin torch" in capsys.readouterr().err


def test_an_inline_torch_backbone_goes_through_search_export_and_predict(small_sample, tmp_path, capsys):
    plugin = str(torch_inline.__file__)
    common = ["--plugin", plugin]
    assert main(["search", str(small_sample), "--trials", "2", "--epochs", "2", "--image-size", "16",
                 "--backbones", "tiny_cnn", "--study", "inline", *common]) == 0
    assert "tiny_cnn" in capsys.readouterr().out
    out = tmp_path / "model"
    assert main(["export", "inline", "--format", "onnx", "-o", str(out), *common]) == 0
    assert main(["predict", str(out), str(small_sample / "cat"), "--json", *common]) == 0
    assert '"probability"' in capsys.readouterr().out


def test_a_broken_installed_plugin_is_skipped_with_a_warning_and_named_when_its_backbone_is_asked_for(monkeypatch, small_sample, capsys):
    import importlib.metadata

    import automl_tl.plugin.manager as plugin_module
    from automl_tl.plugin.manager import PluginWarning

    real = plugin_module.installed_entry_points
    broken = importlib.metadata.EntryPoint(name="broken_nets", value="automl_tl_no_such_module.plugin", group="automl_tl")
    monkeypatch.setattr(plugin_module, "installed_entry_points", lambda: [*real(), broken])
    with pytest.warns(PluginWarning, match="'broken_nets'.*failed to import"):
        plugins = load_plugins()
    assert "mobilenet_v2" in plugins.backbones  # the rest still loads
    with pytest.raises(UserError, match=r"Unknown backbone 'resnext_broken'.*failed to load.*broken_nets \(ModuleNotFoundError"):
        plugins.backbone("resnext_broken")
    assert main(["search", str(small_sample), "--backbones", "resnext_broken", "--trials", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "matches no backbone" in err and "broken_nets" in err and "Traceback" not in err


def test_an_installed_plugin_with_a_bad_spec_is_skipped_and_named_and_the_rest_still_loads(monkeypatch):
    """One broken third-party package must not break every command: its plugin is skipped with a
    warning, like one that fails to import, and named when its backbone is asked for."""
    import automl_tl.plugin.manager as plugin_module
    from automl_tl.plugin.manager import PluginWarning

    bad = types.ModuleType("bad_nets_plugin")
    bad.register_backbones = hookimpl(lambda register: register(dataclasses.replace(torch_inline.tiny_spec(), name="bad_net", mean=0.45)))
    real = plugin_module._entry_point_modules

    def with_bad(failures, sources):
        sources["bad_nets"] = "entry point bad_nets_plugin (bad-nets 1.0)"
        return [*real(failures, sources), ("bad_nets", bad)]

    monkeypatch.setattr(plugin_module, "_entry_point_modules", with_bad)
    with pytest.warns(PluginWarning, match=r"'bad_nets' was skipped.*mean=0.45"):
        plugins = load_plugins()
    assert "mobilenet_v2" in plugins.backbones
    with pytest.raises(UserError, match=r"Unknown backbone 'bad_net'.*bad_nets.*mean=0.45"):
        plugins.backbone("bad_net")
    with pytest.raises(UserError, match="mean=0.45"):  # the same spec from a plugin the user names is refused at once
        load_plugins(extra=[("mine", bad)], entry_points=False)
