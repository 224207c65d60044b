"""The modules plugin authors import from declare their public names, and each public class and
function among them says what it is."""

from __future__ import annotations

import importlib
import inspect

import pytest

from automl_tl.plugin.public import PUBLIC_API

WHOLE_MODULES = [name for name, names in PUBLIC_API.items() if names is None]
NAMED = [(module, name) for module, names in PUBLIC_API.items() if names is not None for name in names]


def documented(obj: object) -> bool:
    return not (inspect.isclass(obj) or inspect.isfunction(obj)) or bool((obj.__doc__ or "").strip())


@pytest.mark.parametrize("name", WHOLE_MODULES)
def test_a_public_module_lists_its_names_in_all_and_documents_them(name):
    module = importlib.import_module(name)
    assert (module.__doc__ or "").strip(), f"{name} has no docstring"
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    undocumented = [n for n in exported if not documented(getattr(module, n))]
    assert not undocumented, f"{name}: public names without a docstring: {undocumented}"


@pytest.mark.parametrize(("module", "name"), NAMED)
def test_each_name_made_public_one_by_one_exists_and_is_documented(module, name):
    imported = importlib.import_module(module)
    assert (imported.__doc__ or "").strip(), f"{module} has no docstring"
    assert hasattr(imported, name), f"automl_tl/plugin/public.py lists {module}.{name}, which does not exist"
    assert documented(getattr(imported, name)), f"{module}.{name} is public but has no docstring"


def test_what_the_bundled_adapters_build_on_is_public():
    assert {"PrefixActivations"} <= set(PUBLIC_API["automl_tl.cache.activations"] or ())
    assert {"ActivationStore"} <= set(PUBLIC_API["automl_tl.cache.store"] or ())
    assert {"automl_tl.training.augment", "automl_tl.training.block_rates", "automl_tl.training.schedule",
            "automl_tl.capabilities", "automl_tl.plugin.spec_checks", "automl_tl.import_order"} <= set(PUBLIC_API)


def test_the_types_a_dataset_adapter_uses_are_exported():
    import automl_tl.data
    import automl_tl.errors
    import automl_tl.types

    assert {"DataSplits", "ImageItem", "SPLITS"} <= set(automl_tl.types.__all__)
    assert "UserError" in automl_tl.errors.__all__
    assert {"make_splits", "stable_split"} <= set(automl_tl.data.__all__)
