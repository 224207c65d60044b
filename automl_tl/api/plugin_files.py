"""The plugin files a study's search loaded (``search --plugin FILE``), recorded with the study.

Later commands never load a recorded file by themselves: a study may come from someone else, and code
that a study names is not code the user chose to run (docs/decisions.md). When a command needs a
backbone that came from such a file and it is not loaded, the error names the file and asks for
``--plugin FILE``; a file passed again whose content changed since the search gets a warning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.study_record import PLUGIN_FILES_ATTR

if TYPE_CHECKING:  # optuna only for the annotation: predict and evaluate load no study, and skip its import
    import optuna


def file_sha256(path: Path) -> str | None:
    """The sha256 of a file's bytes; None when it cannot be read (gone, or not a file)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def plugin_file_records(plugins: Plugins, files: Iterable[str]) -> list[dict[str, Any]]:
    """What to record for each ``--plugin`` file: its absolute path, its content hash and the backbones
    it registered (load_plugins names a file's plugin ``file:NAME.py``)."""
    records = []
    for given in files:
        path = Path(given).expanduser().resolve()
        owner = f"file:{Path(given).name}"
        backbones = [name for name in plugins.backbones if plugins.backbones.owner(name) == owner]
        records.append({"path": str(path), "sha256": file_sha256(path), "backbones": backbones})
    return records


def record_plugin_files(study: optuna.Study, plugins: Plugins, files: Iterable[str]) -> None:
    """Add this search's ``--plugin`` files to the study's record (a file recorded before is updated)."""
    from automl_tl.runtime.interrupts import storage_write

    new = plugin_file_records(plugins, files)
    if not new:
        return
    kept = [r for r in recorded_plugin_files(study.user_attrs) if r["path"] not in {n["path"] for n in new}]
    with storage_write():
        study.set_user_attr(PLUGIN_FILES_ATTR, kept + new)


def recorded_plugin_files(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The plugin files a study records (an empty list for a study searched without any)."""
    records = attrs.get(PLUGIN_FILES_ATTR)
    if not isinstance(records, list):
        return []
    return [r for r in records if isinstance(r, dict) and isinstance(r.get("path"), str)]


def check_study_backbones(plugins: Plugins, attrs: dict[str, Any], needed: Iterable[str],
                          given: Iterable[str]) -> list[str]:
    """Before a command rebuilds the study's backbones ``needed``: an error naming the recorded plugin
    file of each one that is not loaded, and, returned, a warning for each ``--plugin`` file ``given``
    whose content differs from the one the search loaded."""
    records = recorded_plugin_files(attrs)
    if not records:
        return []
    missing = [name for name in needed if name not in plugins.backbones]
    if missing:
        raise UserError(missing_backbones_message(missing, records))
    return changed_files(plugins, records, given)


def missing_backbones_message(missing: list[str], records: list[dict[str, Any]]) -> str:
    """Which recorded plugin files the missing backbones came from, and how to load them."""
    named = [r for r in records if set(r.get("backbones") or ()) & set(missing)] or records
    files = []
    for record in named:
        path = Path(record["path"])
        gone = "" if path.is_file() else " (no longer there: pass --plugin with where it is now)"
        files.append(f"{path}{gone}")
    names = ", ".join(repr(name) for name in missing)
    subject = f"Backbones {names} are" if len(missing) > 1 else f"Backbone {names} is"
    return (
        f"{subject} not loaded: the study's search loaded {'them' if len(missing) > 1 else 'it'} from the plugin file "
        f"{' or '.join(files)} (`search --plugin`). automl-tl does not load plugin files that a study names by "
        f"itself, because a study may come from someone else; if you trust the file, pass it to this command "
        f"with --plugin FILE."
    )


def changed_files(plugins: Plugins, records: list[dict[str, Any]], given: Iterable[str]) -> list[str]:
    """A warning for each ``--plugin`` file whose content differs from the recorded file of the same path
    or of the same backbones."""
    lines = []
    for record in plugin_file_records(plugins, given):
        for old in records:
            same = old["path"] == record["path"] or set(old.get("backbones") or ()) & set(record["backbones"])
            if same and old.get("sha256") and record["sha256"] and old["sha256"] != record["sha256"]:
                lines.append(
                    f"--plugin {record['path']} is not the file the study's search loaded ({old['path']}, sha256 "
                    f"{str(old['sha256'])[:12]}; this one is {str(record['sha256'])[:12]}). Its backbones may now be "
                    f"built differently; export refuses a backbone whose pretrained weights changed."
                )
                break
    return lines
