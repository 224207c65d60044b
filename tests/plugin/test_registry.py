import pytest

from automl_tl.errors import UserError
from automl_tl.plugin.registry import DuplicateNameError, Registry


def test_duplicate_names_error_names_both_plugins():
    registry: Registry[int] = Registry("backbone")
    registry.add("net", 1, owner="first")
    with pytest.raises(DuplicateNameError) as info:
        registry.add("net", 2, owner="second")
    assert "'first'" in str(info.value) and "'second'" in str(info.value)
    assert registry.get("net") == 1


def test_unknown_name_suggests_close_match():
    registry: Registry[int] = Registry("backbone")
    registry.add("mobilenet_v2", 1, owner="torch")
    with pytest.raises(UserError, match="Did you mean 'mobilenet_v2'"):
        registry.get("mobilenet_v3")


def test_patterns_filter_in_registration_order():
    registry: Registry[int] = Registry("backbone")
    for i, name in enumerate(["resnet18", "mobilenet_v2", "mobilenet_v3_small", "resnet50"]):
        registry.add(name, i, owner="p")
    assert registry.names("mobilenet*") == ["mobilenet_v2", "mobilenet_v3_small"]
    assert registry.names("resnet50, mobilenet_v2") == ["mobilenet_v2", "resnet50"]
    assert registry.names() == ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "resnet50"]
