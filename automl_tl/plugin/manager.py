"""The plugin manager: entry-point plugins (built-ins included), explicit plugin files, registries.

Plugins are collected through pluggy's own hook calls, once per plugin and hook, so that what each
plugin registers is recorded as its own, a plugin whose hook raises is skipped alone, hook wrappers
run and ``add_hookcall_monitoring`` sees every call. What they register is checked on the way in
(``spec_checks``), and what a dataset adapter returns on the way out (``data_checks``)."""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from automl_tl import hookspecs
from automl_tl.errors import UserError
from automl_tl.import_order import torchvision_before_tensorflow
from automl_tl.plugin.data_checks import check_splits
from automl_tl.plugin.registry import Registry
from automl_tl.plugin.spec_checks import check_backbone_spec, check_dataset_adapter, check_framework_adapter
from automl_tl.runtime.env_vars import LOAD_PLUGINS, TRACE_HOOKS
from automl_tl.runtime.shown_text import printable
from automl_tl.types import BackboneSpec, DatasetAdapter, DataSplits, FrameworkAdapter

__all__ = [
    "ENTRY_POINT_GROUP",
    "LOAD_ENV",
    "TRACE_ENV",
    "PluginWarning",
    "Plugins",
    "installed_entry_points",
    "load_plugin_file",
    "load_plugins",
    "plugin_rows",
]

ENTRY_POINT_GROUP = "automl_tl"
LOAD_ENV, TRACE_ENV = LOAD_PLUGINS.name, TRACE_HOOKS.name


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
    notices: dict[str, str] = field(default_factory=dict)  # plugin name -> why it may register less than meant

    def framework(self, name: str) -> FrameworkAdapter:
        """The framework adapter registered as ``name``, or a ``UserError`` that names the failed plugins."""
        with self.naming_failed_plugins():
            return self.frameworks.get(name)

    def backbone(self, name: str) -> BackboneSpec:
        """The backbone registered as ``name``, or a ``UserError`` that names the failed plugins."""
        with self.naming_failed_plugins():
            return self.backbones.get(name)

    def failed_plugins_hint(self) -> str:
        """A sentence naming the plugins that failed to load, or loaded with a warning, which may provide
        what is missing."""
        hint = ""
        if self.failures:
            listed = "; ".join(f"{name} ({error})" for name, error in self.failures.items())
            hint += f" Plugins that failed to load, and may provide it: {listed}."
        if self.notices:
            listed = "; ".join(f"{name} ({notice})" for name, notice in self.notices.items())
            hint += f" Plugins that loaded with a warning: {listed}."
        return hint

    @contextmanager
    def naming_failed_plugins(self) -> Iterator[None]:
        """A lookup that fails becomes a hard error that also names the plugins that failed to load."""
        try:
            yield
        except UserError as exc:
            raise UserError(f"{exc}{self.failed_plugins_hint()}") from None

    def discover(self, location: str) -> DataSplits:
        """The labelled images at ``location``, as the dataset adapter that claims it finds them, checked
        (``data_checks.check_splits``): two classes or more, non-empty train and validation splits,
        labels in range. Whatever is wrong is a ``UserError`` naming the adapter and its plugin."""
        adapter = self.dataset_for(location)
        return check_splits(adapter.discover(location), adapter.name, self.datasets.owner(adapter.name), location)

    def dataset_for(self, location: str) -> DatasetAdapter:
        """The first registered dataset adapter that claims ``location``; a ``UserError`` when none does."""
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
        for _name, adapter in self.datasets.items():
            if adapter.claims(location):
                return adapter
        raise UserError(
            f"No dataset adapter can read {location!r}. Pass a folder with one sub-folder per class, "
            f"a CSV manifest with path,label columns, or leave DATA out to use the bundled sample."
        )


def _allowed_names() -> set[str] | None:
    value = LOAD_PLUGINS.raw()
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


def _callers_in_order(impls: Sequence[pluggy.HookImpl]) -> list[tuple[object, str]]:
    """The plugins that implement a hook (wrappers aside), each once, in pluggy's own call order: pluggy
    keeps ``get_hookimpls()`` as trylast, plain, tryfirst, each in registration order, and calls them from
    the end (LIFO). ``load_plugins`` registers plugins last to first, so that order is the load order."""
    plain = [impl for impl in reversed(impls) if not (impl.wrapper or impl.hookwrapper)]
    seen: list[tuple[object, str]] = []
    for impl in plain:
        if not any(plugin is impl.plugin for plugin, _ in seen):
            seen.append((impl.plugin, impl.plugin_name))
    return seen


def _collect(plugins: Plugins, hook_name: str, add: Callable[[Any, str], None]) -> None:
    """Call ``hook_name`` once per plugin that implements it, through pluggy (``subset_hook_caller``
    leaves the other implementing plugins out of each call), with a ``register`` that passes each item
    and that plugin's name to ``add``. Wrappers of plugins that do not implement the hook themselves run
    around every plugin's call; a plugin's own wrapper runs around its own call."""
    manager = plugins.manager
    callers = _callers_in_order(getattr(manager.hook, hook_name).get_hookimpls())
    for plugin, owner in callers:

        def register(item: Any, _owner: str = owner) -> None:
            add(item, _owner)

        others = [other for other, _ in callers if other is not plugin]
        try:
            manager.subset_hook_caller(hook_name, remove_plugins=others)(register=register)
        except UserError as exc:
            # A plugin the user named (--plugin, or in code) is theirs to fix now. An installed one that
            # registers a bad spec is skipped like one that fails to import, so it cannot break every
            # command, and it is named when its backbone is asked for.
            if not plugins.sources.get(owner, "").startswith("entry point "):
                raise
            plugins.failures[owner] = str(exc)
            warnings.warn(f"Plugin {owner!r} was skipped: {exc}", PluginWarning, stacklevel=2)
        except Exception as exc:
            plugins.failures[owner] = f"{hook_name} raised {type(exc).__name__}: {exc}"
            warnings.warn(f"Plugin {owner!r} raised in {hook_name} and was skipped: {exc}", PluginWarning, stacklevel=2)


def _write_trace(text: str) -> None:
    """pluggy's trace lines on stderr, each made printable (plugin names are file names)."""
    for line in text.splitlines():
        print(f"[automl-tl hook] {printable(line)}", file=sys.stderr)


def _trace_hook_calls(manager: pluggy.PluginManager) -> None:
    """pluggy's own tracing on stderr (``AUTOML_TL_TRACE_HOOKS=1``): ``enable_tracing`` writes each hook
    call with its arguments and its result; one more monitor names, through the same tracer, the plugins
    each call reaches (automl-tl calls a hook once per plugin)."""
    manager.trace.root.setwriter(_write_trace)
    manager.enable_tracing()
    hooktrace = manager.trace.root.get("hook")

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Any) -> None:
        hooktrace(hook_name, "-> plugin", ", ".join(name for _plugin, name in _callers_in_order(impls)))

    manager.add_hookcall_monitoring(before, lambda outcome, hook_name, impls, kwargs: None)


def _undecorated_hooks(manager: pluggy.PluginManager, plugin: object) -> dict[str, str]:
    """Functions of ``plugin`` named like a hook, or nearly, that lack ``@hookimpl`` (so pluggy ignores
    them), each with the hook it is named after."""
    hooks = [name for name, caller in vars(manager.hook).items() if isinstance(caller, pluggy.HookCaller) and caller.has_spec()]
    found = {}
    for attr in dir(plugin):
        if attr.startswith("_") or not callable(getattr(plugin, attr, None)):
            continue
        if manager.parse_hookimpl_opts(plugin, attr) is not None:
            continue
        close = [attr] if attr in hooks else difflib.get_close_matches(attr, hooks, n=1, cutoff=0.85)
        if close and attr.startswith("register_"):
            found[attr] = close[0]
    return found


def _warn_undecorated(plugins: Plugins, name: str, plugin: object) -> None:
    """Warn about hook functions the plugin defines without ``@hookimpl``: they would register nothing."""
    missing = _undecorated_hooks(plugins.manager, plugin)
    if not missing:
        return
    functions = ", ".join(f"{attr}()" for attr in missing)
    renames = "".join(f" {attr} is not a hook's name: call it {hook}." for attr, hook in missing.items() if attr != hook)
    plugins.notices[name] = f"{functions} not decorated with @hookimpl, so never called"
    warnings.warn(
        f"Plugin {name!r} ({plugins.sources.get(name, 'registered in code')}) defines {functions} without "
        f"@hookimpl, so pluggy never calls it and it registers nothing. Decorate it with @hookimpl, imported "
        f"with `from automl_tl.hookspecs import hookimpl`.{renames}",
        PluginWarning,
        stacklevel=3,
    )


def _hashable(name: str, plugin: object) -> object:
    """``plugin``, or for an unhashable namespace (a ``types.SimpleNamespace``) a module holding the same
    attributes: pluggy's subset hook calls keep plugins in a set."""
    try:
        hash(plugin)
        return plugin
    except TypeError:
        module = ModuleType(f"automl_tl_plugin_{name}")
        module.__dict__.update(vars(plugin))
        return module


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
    hashable = [(name, _hashable(name, obj)) for name, obj in candidates]
    for name, obj in reversed(hashable):  # pluggy calls the last registered first: see _callers_in_order
        try:
            manager.register(obj, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise UserError(f"Plugin {name!r} could not be registered: {exc}") from None
    for name, obj in hashable:
        _warn_undecorated(plugins, name, obj)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise UserError(
            f"Plugin {exc.plugin!r} implements a hook that automl-tl does not define: {exc}. "
            f"Check the hook's name against automl_tl.hookspecs."
        ) from None
    if TRACE_HOOKS.given():
        _trace_hook_calls(manager)

    def checked(check: Callable[[Any, str], Any], registry: Registry[Any]) -> Callable[[Any, str], None]:
        def add(item: Any, owner: str) -> None:
            item = check(item, owner)
            registry.add(item.name, item, owner)

        return add

    _collect(plugins, "register_frameworks", checked(check_framework_adapter, plugins.frameworks))
    _collect(plugins, "register_backbones", checked(check_backbone_spec, plugins.backbones))
    _collect(plugins, "register_datasets", checked(check_dataset_adapter, plugins.datasets))
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
    for row in rows:
        if row["name"] in plugins.notices:
            row["warning"] = plugins.notices[row["name"]]
    for name, error in plugins.failures.items():
        rows.append({"name": name, "source": "failed", "error": error, "hooks": [], "frameworks": [], "backbones": [], "datasets": []})
    return rows

