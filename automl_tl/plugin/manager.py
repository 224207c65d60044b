"""The plugin manager: entry-point plugins (built-ins included), explicit plugin files, registries."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

import pluggy

from automl_tl import hookspecs
from automl_tl.errors import UserError
from automl_tl.import_order import torchvision_before_tensorflow
from automl_tl.plugin.registry import Registry
from automl_tl.types import BackboneSpec, DatasetAdapter, DataSplits, FrameworkAdapter

ENTRY_POINT_GROUP = "automl_tl"
LOAD_ENV = "AUTOML_TL_LOAD_PLUGINS"
TRACE_ENV = "AUTOML_TL_TRACE_HOOKS"


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the rest still are."""


@dataclass
class Plugins:
    """The loaded plugins and the registries they filled."""

    manager: pluggy.PluginManager
    frameworks: Registry[FrameworkAdapter] = field(default_factory=lambda: Registry("framework"))
    backbones: Registry[BackboneSpec] = field(default_factory=lambda: Registry("backbone"))
    datasets: Registry[DatasetAdapter] = field(default_factory=lambda: Registry("dataset adapter"))
    failures: dict[str, str] = field(default_factory=dict)  # plugin name -> error
    sources: dict[str, str] = field(default_factory=dict)  # plugin name -> where it came from

    def framework(self, name: str) -> FrameworkAdapter:
        with self.naming_failed_plugins():
            return self.frameworks.get(name)

    def backbone(self, name: str) -> BackboneSpec:
        with self.naming_failed_plugins():
            return self.backbones.get(name)

    def failed_plugins_hint(self) -> str:
        """A sentence naming the plugins that failed to load, which may provide what is missing."""
        if not self.failures:
            return ""
        listed = "; ".join(f"{name} ({error})" for name, error in self.failures.items())
        return f" Plugins that failed to load, and may provide it: {listed}."

    @contextmanager
    def naming_failed_plugins(self) -> Iterator[None]:
        """A lookup that fails becomes a hard error that also names the plugins that failed to load."""
        try:
            yield
        except UserError as exc:
            raise UserError(f"{exc}{self.failed_plugins_hint()}") from None

    def discover(self, location: str) -> DataSplits:
        """The labelled images at ``location``, as the dataset adapter that claims it finds them."""
        return self.dataset_for(location).discover(location)

    def dataset_for(self, location: str) -> DatasetAdapter:
        if "\x00" in location:
            raise UserError(
                f"DATA {location!r} contains a NUL byte (\\x00), which no file name can hold. Check how the "
                f"path was typed or generated."
            )
        if not Path(location).expanduser().exists():
            raise UserError(
                f"DATA {location} does not exist. Pass a folder with one sub-folder per class "
                f"(DATA/cat/1.jpg, DATA/dog/2.png, ...) or a CSV manifest with path,label columns."
            )
        for name, adapter in self.datasets.items():
            if adapter.claims(location):
                return adapter
        raise UserError(
            f"No dataset adapter can read {location!r}. Pass a folder with one sub-folder per class, "
            f"a CSV manifest with path,label columns, or leave DATA out to use the bundled sample."
        )


def _allowed_names() -> set[str] | None:
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def installed_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The ``automl_tl`` entry points of installed distributions, never of one in the working directory.

    ``python -m`` and ``python -c`` put the working directory on ``sys.path``, so a folder a user
    merely ``cd``-ed into (a downloaded data set, a colleague's project) could otherwise plant an
    ``*.dist-info/entry_points.txt`` there whose plugin automl-tl would import and run."""
    here = Path.cwd().resolve()

    def away_from_here(entry: str) -> bool:
        try:
            return Path(entry or ".").resolve() != here
        except (OSError, ValueError):
            return False

    path = [entry for entry in sys.path if away_from_here(entry)]
    return [entry_point for dist in importlib.metadata.distributions(path=path)
            for entry_point in dist.entry_points.select(group=ENTRY_POINT_GROUP)]


def _entry_point_modules(failures: dict[str, str], sources: dict[str, str]) -> list[tuple[str, ModuleType]]:
    allowed = _allowed_names()
    loaded: list[tuple[str, ModuleType]] = []
    for entry_point in installed_entry_points():
        if allowed is not None and entry_point.name not in allowed:
            continue
        if entry_point.name in sources:
            continue  # the same distribution seen twice on sys.path
        try:
            module = entry_point.load()
        except Exception as exc:  # a broken plugin must not take the others down
            failures[entry_point.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"Plugin {entry_point.name!r} ({entry_point.value}) failed to import and was skipped: {exc}",
                PluginWarning,
                stacklevel=2,
            )
            continue
        dist = entry_point.dist.name if entry_point.dist is not None else "?"
        sources[entry_point.name] = f"entry point {entry_point.value} ({dist})"
        loaded.append((entry_point.name, module))
    return loaded


def load_plugin_file(path: str | Path) -> ModuleType:
    """Import a single-file plugin named with ``--plugin``."""
    file = Path(path).expanduser().resolve()
    if not file.is_file() or file.suffix != ".py":
        raise UserError(f"--plugin {path}: no such Python file. Pass the path of a .py file with @hookimpl functions.")
    module_name = f"automl_tl_file_plugin_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise UserError(f"--plugin {path} failed to import: {type(exc).__name__}: {exc}") from None
    return module


def _collect(plugins: Plugins, hook_name: str, registry: Registry[Any]) -> None:
    hook = getattr(plugins.manager.hook, hook_name)
    trace = bool(os.environ.get(TRACE_ENV))
    for impl in hook.get_hookimpls():
        owner = impl.plugin_name

        def register(item: Any, _owner: str = owner) -> None:
            registry.add(item.name, item, _owner)

        if trace:
            print(f"[automl-tl hook] {hook_name} -> plugin {owner}", file=sys.stderr)
        try:
            impl.function(register=register)
        except UserError:
            raise
        except Exception as exc:
            plugins.failures[owner] = f"{hook_name} raised {type(exc).__name__}: {exc}"
            warnings.warn(f"Plugin {owner!r} raised in {hook_name} and was skipped: {exc}", PluginWarning, stacklevel=2)


def load_plugins(
    extra: Iterable[tuple[str, object]] = (),
    plugin_files: Iterable[str | Path] = (),
    entry_points: bool = True,
) -> Plugins:
    """Load entry-point plugins (unless disabled), explicit plugin files and ``extra`` objects."""
    torchvision_before_tensorflow()  # a plugin may import either framework at import time
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager=manager)
    candidates: list[tuple[str, object]] = []
    if entry_points:
        candidates.extend(_entry_point_modules(plugins.failures, plugins.sources))
    for path in plugin_files:
        module = load_plugin_file(path)
        name = f"file:{Path(path).name}"
        plugins.sources[name] = f"--plugin {path}"
        candidates.append((name, module))
    for name, obj in extra:
        plugins.sources.setdefault(name, "registered in code")
        candidates.append((name, obj))
    for name, obj in candidates:
        try:
            manager.register(obj, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise UserError(f"Plugin {name!r} could not be registered: {exc}") from None
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise UserError(
            f"Plugin {exc.plugin!r} implements a hook that automl-tl does not define: {exc}. "
            f"Check the hook's name against automl_tl.hookspecs."
        ) from None
    _collect(plugins, "register_frameworks", plugins.frameworks)
    _collect(plugins, "register_backbones", plugins.backbones)
    _collect(plugins, "register_datasets", plugins.datasets)
    return plugins


def plugin_rows(plugins: Plugins) -> list[dict[str, Any]]:
    """One row per loaded plugin with what it registered, for ``automl-tl plugins``."""
    rows = []
    for name in plugins.sources:
        if plugins.manager.get_plugin(name) is None:
            continue
        rows.append(
            {
                "name": name,
                "source": plugins.sources[name],
                "hooks": sorted(h.name for h in plugins.manager.get_hookcallers(plugins.manager.get_plugin(name)) or []),
                "frameworks": [n for n in plugins.frameworks if plugins.frameworks.owner(n) == name],
                "backbones": [n for n in plugins.backbones if plugins.backbones.owner(n) == name],
                "datasets": [n for n in plugins.datasets if plugins.datasets.owner(n) == name],
            }
        )
    for name, error in plugins.failures.items():
        rows.append({"name": name, "source": "failed", "error": error, "hooks": [], "frameworks": [], "backbones": [], "datasets": []})
    return rows


RegisterFn = Callable[[Any], None]
