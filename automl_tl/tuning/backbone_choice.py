"""Which frameworks and backbones a search may use: those installed, matching the user's patterns, with their weights here."""

from __future__ import annotations

from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins


def chosen_frameworks(plugins: Plugins, choice: str) -> list[str]:
    """``--framework``: one loaded and installed framework, or ``all`` of the installed ones."""
    if choice == "all":
        return [name for name, adapter in plugins.frameworks.items() if adapter.is_installed()]
    if choice not in plugins.frameworks:
        hint = " Install it with: pip install 'automl-tl[keras]'." if choice == "keras" else ""
        raise UserError(f"--framework {choice}: no such framework plugin is loaded.{hint} Loaded: "
                        f"{', '.join(plugins.frameworks) or 'none'}.{plugins.failed_plugins_hint()}")
    if not plugins.framework(choice).is_installed():
        raise UserError(f"--framework {choice}: the framework is not installed in this environment.")
    return [choice]


def select_backbones(plugins: Plugins, frameworks: list[str], patterns: str | None) -> tuple[list[str], list[str]]:
    """Backbones to search: matching names in the chosen frameworks whose pretrained weights are here.

    Returns (usable, skipped-with-reason). A backbone without weights is never silently trained from scratch.
    """
    names = [n for n in plugins.backbones.names(patterns) if plugins.backbone(n).framework in frameworks]
    usable, skipped = [], []
    for name in names:
        spec = plugins.backbone(name)
        if not spec.pretrained or spec.weights_available():
            usable.append(name)
        else:
            skipped.append(f"{name} (pretrained weights not found: {spec.weights.where if spec.weights else ''})")
    if not usable:
        if not names:
            raise UserError(f"--backbones {patterns!r} matches no backbone of framework {', '.join(frameworks)}. "
                            f"See `automl-tl backbones`.{plugins.failed_plugins_hint()}")
        raise UserError(
            f"None of the chosen backbones has its pretrained weights available here: {'; '.join(skipped)}. "
            f"Download them once with network access (torchvision's weights= API caches them), or run `make setup` "
            f"for the offline MobileNetV2 weights."
        )
    return usable, skipped
