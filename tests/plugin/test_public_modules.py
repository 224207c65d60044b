"""The modules plugin authors import from declare their public names, and each public class and
function among them says what it is."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC_MODULES = ["automl_tl.types", "automl_tl.hookspecs", "automl_tl.errors", "automl_tl.data", "automl_tl.data.split",
                  "automl_tl.plugin", "automl_tl.plugin.manager", "automl_tl.plugin.registry", "automl_tl.plugin.spec_checks",
                  "automl_tl.plugin.data_checks"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_a_public_module_lists_its_names_in_all_and_documents_them(name):
    module = importlib.import_module(name)
    assert (module.__doc__ or "").strip(), f"{name} has no docstring"
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    undocumented = [n for n in exported if (inspect.isclass(obj := getattr(module, n)) or inspect.isfunction(obj))
                    and not (obj.__doc__ or "").strip()]
    assert not undocumented, f"{name}: public names without a docstring: {undocumented}"


def test_the_types_a_dataset_adapter_uses_are_exported():
    import automl_tl.data
    import automl_tl.errors
    import automl_tl.types

    assert {"DataSplits", "ImageItem", "SPLITS"} <= set(automl_tl.types.__all__)
    assert "UserError" in automl_tl.errors.__all__
    assert {"make_splits", "stable_split"} <= set(automl_tl.data.__all__)
