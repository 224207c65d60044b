"""Plugins are collected through pluggy's own hook calls: wrappers run, ``add_hookcall_monitoring``
sees every call, tryfirst is honoured, a plugin that raises is skipped alone, and a hook function that
lacks ``@hookimpl`` is reported instead of silently registering nothing."""

from __future__ import annotations

import types

import pluggy
import pytest

import automl_tl.plugin.manager as manager_module
import tests.support.sample_plugins.torch_inline as torch_inline
from automl_tl.errors import UserError
from automl_tl.hookspecs import hookimpl
from automl_tl.plugin.manager import PluginWarning, load_plugins


class WrapsRegistrations:
    """A plugin that only wraps register_backbones (new-style and old-style wrappers) and records what it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def register_backbones(self, register):
        self.seen.append("new-style before")
        result = yield
        self.seen.append("new-style after")
        return result

    @hookimpl(hookwrapper=True, specname="register_backbones")
    def old_style(self, register):
        self.seen.append("old-style before")
        yield
        self.seen.append("old-style after")


def test_register_backbones_a_wrapper_plugin_runs_around_each_plugins_call():
    wrapper = WrapsRegistrations()
    plugins = load_plugins(extra=[("inline", torch_inline), ("wrapper", wrapper)], entry_points=False)
    assert plugins.backbones.owner("tiny_cnn") == "inline"
    assert wrapper.seen == ["new-style before", "old-style before", "old-style after", "new-style after"]


def test_add_hookcall_monitoring_sees_each_plugins_registration_call(monkeypatch):
    calls: list[tuple[str, list[str]]] = []

    class MonitoredManager(pluggy.PluginManager):
        def __init__(self, project_name: str) -> None:
            super().__init__(project_name)
            self.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append((name, [i.plugin_name for i in impls])),
                                         lambda outcome, name, impls, kwargs: None)

    monkeypatch.setattr(manager_module.pluggy, "PluginManager", MonitoredManager)
    second = types.SimpleNamespace(register_backbones=hookimpl(
        lambda register: register(torch_inline.tiny_spec("tiny_two"))))
    plugins = load_plugins(extra=[("inline", torch_inline), ("second", second)], entry_points=False)
    assert ("register_backbones", ["inline"]) in calls and ("register_backbones", ["second"]) in calls
    assert plugins.backbones.owner("tiny_two") == "second" and plugins.backbones.owner("tiny_cnn") == "inline"


def test_trace_names_the_plugin_of_each_call(monkeypatch, capsys):
    monkeypatch.setenv("AUTOML_TL_TRACE_HOOKS", "1")
    load_plugins(extra=[("inline", torch_inline)], entry_points=False)
    assert "register_backbones -> plugin inline" in capsys.readouterr().err


def test_register_datasets_a_tryfirst_adapter_is_asked_before_the_built_in_ones():
    class Everything:
        name = "everything"

        def claims(self, location):
            return True

        def discover(self, location):
            raise UserError("not reached")

    module = types.SimpleNamespace(register_datasets=hookimpl(tryfirst=True)(lambda register: register(Everything())))
    plugins = load_plugins(extra=[("eager", module)])
    assert plugins.datasets.names() == ["everything", "csv", "folder"]


def test_a_plugin_whose_hook_raises_is_skipped_alone():
    def explode(register):
        register(torch_inline.tiny_spec("half_registered"))
        raise RuntimeError("boom")

    broken = types.SimpleNamespace(register_backbones=hookimpl(explode))
    with pytest.warns(PluginWarning, match=r"'broken' raised in register_backbones.*boom"):
        plugins = load_plugins(extra=[("broken", broken), ("inline", torch_inline)], entry_points=False)
    assert "tiny_cnn" in plugins.backbones and "register_backbones raised RuntimeError: boom" in plugins.failures["broken"]


UNDECORATED = '''
from automl_tl.hookspecs import hookimpl
from tests.support.sample_plugins.torch_inline import tiny_spec


def register_backbones(register):
    register(tiny_spec("forgotten_cnn"))


def register_backbone(register):  # a near-miss name, also without @hookimpl
    register(tiny_spec("forgotten_too"))


def helper():
    return 1
'''


def test_a_plugin_file_whose_hook_lacks_hookimpl_warns_naming_file_and_function(tmp_path):
    plugin = tmp_path / "forgetful.py"
    plugin.write_text(UNDECORATED)
    with pytest.warns(PluginWarning) as record:
        plugins = load_plugins(plugin_files=[plugin], entry_points=False)
    message = " ".join(str(w.message) for w in record)
    assert "file:forgetful.py" in message and str(plugin) in message
    assert "register_backbones()" in message and "register_backbone()" in message and "helper" not in message
    assert "register_backbone is not a hook's name: call it register_backbones" in message
    assert "@hookimpl" in message and "from automl_tl.hookspecs import hookimpl" in message
    with pytest.raises(UserError, match=r"Unknown backbone 'forgotten_cnn'.*file:forgetful\.py.*not decorated"):
        plugins.backbone("forgotten_cnn")


def test_a_decorated_plugin_file_loads_without_warnings(tmp_path, recwarn):
    load_plugins(plugin_files=[torch_inline.__file__], entry_points=False)
    assert not [w for w in recwarn if issubclass(w.category, PluginWarning)]
