"""The plugin layer: the pluggy manager that loads plugins, the registry that checks what they register."""

from automl_tl.plugin.manager import Plugins, load_plugins

__all__ = ["Plugins", "load_plugins"]
