"""``cache``: where the activation cache, the decoded-image store, the measured latencies and block timings are,
what they hold, and clearing them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from automl_tl.api.common import console
from automl_tl.runtime.shown_text import console_text


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def cache_folders() -> dict[str, Path]:
    """The two caches automl-tl keeps under ``$AUTOML_TL_CACHE_DIR``, by what they hold."""
    from automl_tl.runtime.cache_paths import activations_dir, decoded_dir

    return {"activations": activations_dir(), "decoded images": decoded_dir()}


def cmd_cache(args: argparse.Namespace) -> int:
    """Show each cache's folder, entries and size; with ``--clear``, delete automl-tl's own entries only."""
    from automl_tl.cache.store import clear_folder, folder_usage, store_from_env
    from automl_tl.data.image_store import KEEP_ENTRIES
    from automl_tl.runtime.env_vars import CACHE_DIR
    from automl_tl.tuning.block_seconds import BlockSecondsCache
    from automl_tl.tuning.latency import LatencyCache

    folders = cache_folders()
    # JSON files of measurements, not folders of entries
    files = {"latency": LatencyCache(), "block seconds": BlockSecondsCache()}
    paths = {**{name: str(path) for name, path in folders.items()}, **{name: str(f.path) for name, f in files.items()}}
    if args.clear:
        removed = {name: clear_folder(path) for name, path in folders.items()}
        removed.update({name: measurements.clear() for name, measurements in files.items()})
        if args.json:
            print(json.dumps([{"cache": name, "path": paths[name], "removed_entries": usage.entries,
                               "removed_bytes": usage.bytes} for name, usage in removed.items()], indent=2))
            return 0
        for name, usage in removed.items():
            console.print(f"{name}: removed {usage.entries} entries ({_size(usage.bytes)}) from "
                          f"{console_text(paths[name])}", highlight=False)
        console.print("Files there that automl-tl did not write were left alone.", highlight=False)
        return 0
    store = store_from_env()  # the limit and dtype the next search would use (checks the settings too)
    rows: list[dict[str, Any]] = []
    for name, path in folders.items():
        usage = folder_usage(path)
        row: dict[str, Any] = {"cache": name, "path": str(path), "entries": usage.entries, "bytes": usage.bytes}
        if name == "activations":
            row.update(limit_bytes=store.max_bytes, dtype=store.dtype.name)
        rows.append(row)
    for name, measurements in files.items():
        held = measurements.usage()
        rows.append({"cache": name, "path": paths[name], "entries": held.entries, "bytes": held.bytes})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"Caches (set {CACHE_DIR.name} to move them)")
    for column in ("cache", "folder", "entries", "size", "limit"):
        table.add_column(column)
    for row in rows:
        limit = (f"{_size(row['limit_bytes'])}, {row['dtype']}" if "limit_bytes" in row else
                 "one per architecture and machine" if row["cache"] == "latency" else
                 "one per backbone, size and machine" if row["cache"] == "block seconds" else f"the newest {KEEP_ENTRIES} kept")
        table.add_row(row["cache"], console_text(row["path"]), str(row["entries"]), _size(row["bytes"]), limit)
    console.print(table)
    console.print("`automl-tl cache --clear` deletes these entries; they are made again when needed.", highlight=False)
    return 0
