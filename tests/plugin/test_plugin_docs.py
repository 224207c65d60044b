"""Meta-tests: every hook is documented in the docs' hook reference and has a test named after it, and the
backbone plugin example of the plugin author's guide really works."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from automl_tl import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS_PAGE = (ROOT / "docs" / "plugins" / "hooks.md").read_text()
BACKBONE_PAGE = (ROOT / "docs" / "plugins" / "backbone.md").read_text()


def hook_names() -> list[str]:
    """The hooks the spec module defines: functions marked with ``@hookspec``."""
    marker = f"{hookspecs.PROJECT}_spec"
    return sorted(name for name, obj in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(obj, marker))


def undocumented(hooks: list[str], page: str) -> list[str]:
    """Hooks without a reference heading ``## `name(...)` `` in the hook reference page."""
    return [h for h in hooks if not re.search(rf"^## `{re.escape(h)}\(", page, flags=re.MULTILINE)]


def untested(hooks: list[str], test_sources: str) -> list[str]:
    """Hooks without a test function whose name starts with ``test_<hook>``."""
    return [h for h in hooks if not re.search(rf"^def test_{re.escape(h)}\w*\(", test_sources, flags=re.MULTILINE)]


def all_test_sources() -> str:
    return "\n".join(path.read_text() for path in sorted((ROOT / "tests").rglob("test_*.py")))


def test_the_hookspecs_define_the_three_registration_hooks():
    assert hook_names() == ["register_backbones", "register_datasets", "register_frameworks"]


def test_every_hook_is_documented_in_the_hook_reference():
    assert undocumented(hook_names(), HOOKS_PAGE) == []


def test_every_hook_has_a_test_named_after_it():
    assert untested(hook_names(), all_test_sources()) == []


def test_the_meta_checks_catch_a_new_hook_that_lacks_docs_or_a_test():
    hooks = [*hook_names(), "register_exporters"]
    assert undocumented(hooks, HOOKS_PAGE) == ["register_exporters"]
    assert untested(hooks, all_test_sources()) == ["register_exporters"]


def test_every_hook_has_a_docstring():
    for name in hook_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def backbone_plugin_example() -> str:
    """The first example of "Writing a backbone plugin" (docs/plugins/backbone.md): the ShuffleNetV2 plugin."""
    section = BACKBONE_PAGE[BACKBONE_PAGE.index("## A PyTorch backbone"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_register_backbones_the_guide_example_loads_and_its_blocks_run(tmp_path):
    torch = pytest.importorskip("torch")
    from automl_tl.plugin.manager import load_plugins
    from automl_tl_torch.model import build_block_stack

    plugin = tmp_path / "guide_plugin.py"
    plugin.write_text(backbone_plugin_example())
    plugins = load_plugins(plugin_files=[plugin])
    spec = plugins.backbone("shufflenet_v2")
    assert plugins.backbones.owner("shufflenet_v2") == "file:guide_plugin.py"
    stack = build_block_stack(spec, pretrained=False).eval()
    with torch.no_grad():
        assert stack(torch.zeros(1, 3, 64, 64)).shape[1] == spec.feature_dim
