"""The adapter contract is written down: optional capabilities are Protocols the core asks with
``isinstance`` (never a ``getattr`` by name), adapter errors have a name that fits every kind of plugin,
and plugins are collected and traced by pluggy's own order and tracing."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

from automl_tl import capabilities
from automl_tl.errors import PluginContractError, UserError
from automl_tl.hookspecs import hookimpl
from automl_tl.plugin.manager import load_plugins
from automl_tl.plugin.spec_checks import BackboneSpecError, check_dataset_adapter, check_framework_adapter
from automl_tl.types import BackboneSpec

CORE = Path(__file__).resolve().parents[2] / "automl_tl"
BY_NAME = re.compile(r"getattr\(\s*[\w.()]*\b(adapter|adapter_of|framework|session)\b\s*[,)]")


def members(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")} | set(vars(protocol).get("__annotations__", {}))


def test_the_core_never_looks_up_an_adapter_or_session_member_by_name():
    found = [f"{path.relative_to(CORE.parent)}:{number}: {line.strip()}"
             for path in sorted(CORE.rglob("*.py")) for number, line in enumerate(path.read_text().splitlines(), 1)
             if BY_NAME.search(line) and "epoch_progress" not in line]  # a required TrialSession member, defaulted
    assert not found, "ask isinstance(adapter, <automl_tl.capabilities Protocol>) instead:\n" + "\n".join(found)


def test_every_optional_member_the_core_uses_is_in_the_contract_and_documented():
    optional = set().union(*(members(p) for p in capabilities.FRAMEWORK_CAPABILITIES))
    assert {"backbone_digest", "inference_latency", "combine", "quantize", "quantize_formats", "flip_average",
            "block_seconds", "prefix_activations", "device"} <= optional
    for protocol in (*capabilities.FRAMEWORK_CAPABILITIES, *capabilities.SESSION_CAPABILITIES):
        assert protocol.__doc__ and protocol.__name__ in capabilities.__all__
        for name, value in vars(protocol).items():
            if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)):
                assert inspect.getdoc(value), f"{protocol.__name__}.{name} has no docstring"


def test_the_core_does_without_a_capability_an_adapter_lacks_and_uses_one_it_has():
    from automl_tl.deploy.quantize import quantize_formats
    from automl_tl.study_record import backbone_weights_digest
    from automl_tl.types import WeightsInfo

    spec = BackboneSpec("tiny", "plain", lambda pretrained: None, ("b1",), 4, weights=WeightsInfo("here", lambda: True))

    class Plain:
        name = "plain"

    class Digesting(Plain):
        quantize_formats = ("onnx",)  # without quantize(), not the Quantizes capability

        def backbone_digest(self, spec: BackboneSpec) -> str:
            return "abc"

    assert backbone_weights_digest(Plain(), spec) is None and quantize_formats(Plain()) == ()  # type: ignore[arg-type]
    assert backbone_weights_digest(Digesting(), spec) == "abc"  # type: ignore[arg-type]
    assert quantize_formats(Digesting()) == ()  # type: ignore[arg-type]


def test_an_adapter_that_breaks_the_contract_is_a_plugin_contract_error_not_a_backbone_one():
    class Nameless:
        def claims(self, location: str) -> bool:
            return False

    for check in (check_framework_adapter, check_dataset_adapter):
        with pytest.raises(PluginContractError, match=r"Plugin 'mine' registered a .* with name=None") as info:
            check(Nameless(), "mine")
        assert not isinstance(info.value, BackboneSpecError) and isinstance(info.value, UserError)
    assert issubclass(BackboneSpecError, PluginContractError)


def backbones_plugin(*names: str, **options: bool) -> types.SimpleNamespace:
    def register_backbones(register):
        for name in names:
            register(BackboneSpec(name, "stub", lambda pretrained: None, ("b1",), 4))

    return types.SimpleNamespace(register_backbones=hookimpl(**options)(register_backbones))


def test_plugins_are_collected_in_pluggys_own_call_order_which_is_the_load_order():
    plugins = load_plugins(extra=[("a", backbones_plugin("one")), ("late", backbones_plugin("last", trylast=True)),
                                  ("b", backbones_plugin("two")), ("early", backbones_plugin("first", tryfirst=True))],
                           entry_points=False)
    assert plugins.backbones.names() == ["first", "one", "two", "last"]
    called: list[str] = []
    plugins.manager.hook.register_backbones(register=lambda spec: called.append(spec.name))  # pluggy's own call
    assert called == plugins.backbones.names()


def test_trace_is_pluggys_own_tracing_naming_the_plugin_of_each_call(monkeypatch, capsys):
    monkeypatch.setenv("AUTOML_TL_TRACE_HOOKS", "1")
    load_plugins(extra=[("a", backbones_plugin("one"))], entry_points=False)
    err = capsys.readouterr().err
    assert "register_backbones -> plugin a [hook]" in err  # the plugin, through pluggy's tracer
    assert "finish register_backbones -->" in err and "register: " in err  # enable_tracing: result and arguments
