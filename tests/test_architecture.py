"""The package's shape, as the docs' "Architecture" page (docs/architecture.md) draws it: one-way layers, no import cycle,
small modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a module may import from its own layer and the layers below it, never from above.
LAYERS = [
    {"types", "session_types", "ensemble_types", "capabilities", "errors", "hookspecs", "import_order",
     "study_record"},  # the contract, and the record of a study that every layer above reads (issue 25, part 1)
    {"runtime"},
    {"plugin"},
    {"data"},
    {"cache"},
    {"training"},
    {"storage"},
    {"audit"},  # the data audit (issue 26): reads data and storage, and is read by the search's commands
    {"tuning"},
    {"distributed"},
    {"deploy"},
    {"report"},
    {"api"},  # the commands and the typed Python API (automl_tl.search, Study, load_model); the CLI parses onto them
    {"cli", "testing", "__main__"},
]
MAX_LINES = 400


def python_files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "plugins":
        parts = parts[1:]
        if parts[0] == "efficientnet_lite":  # plugins/efficientnet_lite/src/<package>
            parts = parts[2:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str) -> set[str]:
    """Every module this file imports, at the top or inside functions, with relative imports resolved."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return found


def import_graph(*tops: str) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in python_files(*tops)}
    return {name: {m for m in imports_of(path, name) if m in modules and m != name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"{module} belongs to no layer: add its subpackage to LAYERS and to docs/architecture.md")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def package_imports(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Imports between a package's modules, leaving out the package's own ``__init__`` (importing a
    submodule always runs it, so that edge is Python's, not a design choice)."""
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def test_every_layer_imports_only_from_itself_and_below():
    graph = import_graph("automl_tl")
    upward = [f"{m} ({layer_of(m)}) imports {d} ({layer_of(d)})"
              for m, deps in graph.items() if m != "automl_tl" for d in deps
              if d != "automl_tl" and layer_of(d) > layer_of(m)]
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


@pytest.mark.parametrize("top", ["automl_tl", "plugins"])
def test_no_import_cycle(top):
    cycle = find_cycle(package_imports(import_graph(top)))
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_layer_check_sees_an_upward_import(tmp_path):
    assert layer_of("automl_tl.data.loader") < layer_of("automl_tl.tuning.space")
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("automl_tl.newthing.x")


@pytest.mark.parametrize("top", ["automl_tl", "plugins"])
def test_no_module_is_over_400_lines(top):
    long = {str(p.relative_to(ROOT)): n for p in python_files(top) if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them along their jobs): {long}"


def test_the_public_paths_plugin_authors_use_still_import():
    import automl_tl.hookspecs
    import automl_tl.testing
    import automl_tl.types

    assert automl_tl.hookspecs.hookimpl and automl_tl.types.BackboneSpec and automl_tl.testing.AdapterConformance


def private_imports(path: Path) -> list[str]:
    """Each ``automl_tl`` import in ``path`` that ``automl_tl.plugin.public.PUBLIC_API`` does not list."""
    from automl_tl.plugin.public import PUBLIC_API, is_public

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names
                      if alias.name.split(".")[0] == "automl_tl" and alias.name not in PUBLIC_API]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "automl_tl":
            module = str(node.module)
            exported = tuple(getattr(importlib.import_module(module), "__all__", ())) if PUBLIC_API.get(module, ()) is None else ()
            found += [f"{module}.{alias.name}" for alias in node.names if not is_public(module, alias.name, exported)]
    return found


def test_plugins_import_only_the_public_surface():
    """Every .py under plugins/ (adapters, their tests and packaging alike) imports from automl_tl only what
    ``automl_tl.plugin.public.PUBLIC_API`` lists: make a name public there, deliberately, or do without it."""
    private = {str(p.relative_to(ROOT)): names for p in python_files("plugins") if (names := private_imports(p))}
    assert not private, f"plugins import automl_tl internals (list them in automl_tl/plugin/public.py or drop them): {private}"


def test_the_public_surface_check_sees_an_internal_import(tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text("from automl_tl.types import BackboneSpec\nfrom automl_tl.cache.store import DiskStore\n"
                      "import automl_tl.tuning.study\nfrom automl_tl.training.schedule import finetune_steps\n")
    assert private_imports(plugin) == ["automl_tl.cache.store.DiskStore", "automl_tl.tuning.study"]
