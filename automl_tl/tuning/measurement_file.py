"""A small JSON file of measurements taken on this machine (latencies, block timings), keyed by digests.

Reading never fails: a missing, damaged or foreign file reads as empty (and is replaced by the next write).
Writing replaces the file atomically; when the folder cannot be written, the figure is simply not kept. Two
processes writing at once may drop each other's newest entry, which is then measured again. Only a file whose
content proves it one of these (exactly the fields this kind of file writes) is ever counted or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from automl_tl.data.cache_entries import STALE_PARTIAL_S, FolderUsage, read_json
from automl_tl.runtime.atomic_files import replace_text


class MeasurementFile:
    """Entries (JSON objects) by key in the file ``path``: ``{"format": N, "entries": {...}}``, plus
    ``"kind": kind`` when ``kind`` is given, so that two kinds of file in one folder never pass for each other."""

    def __init__(self, path: Path, format_version: int, kind: str | None = None) -> None:
        self.path, self.format_version, self.kind = path, format_version, kind

    def _header(self) -> dict[str, Any]:
        return {"format": self.format_version, **({"kind": self.kind} if self.kind is not None else {})}

    def _is_ours(self, content: Any) -> bool:
        """Whether ``content`` is such a file's (of any format version): an object of exactly its fields."""
        fields = {"format", "entries", *({"kind"} if self.kind is not None else ())}
        return isinstance(content, dict) and set(content) == fields and isinstance(content["format"], int) \
            and isinstance(content["entries"], dict) and content.get("kind") == self.kind

    def proves(self, path: Path) -> bool:
        """Whether ``path`` holds a file of this kind (of any format version)."""
        return self._is_ours(read_json(path))

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every stored entry, by key; {} when the file is missing, damaged, another kind or another format."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not self._is_ours(data) or data["format"] != self.format_version:
            return {}
        return {key: entry for key, entry in data["entries"].items() if isinstance(entry, dict)}

    def entry(self, key: str) -> dict[str, Any] | None:
        """The entry stored under ``key``, or None."""
        return self.entries().get(key)

    def put_entry(self, key: str, entry: Mapping[str, Any]) -> bool:
        """Keep ``entry`` under ``key`` (with the time it was measured); False when the file could not be written."""
        entries = self.entries()
        entries[key] = {**dict(entry), "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_text(self.path, json.dumps({**self._header(), "entries": entries}, indent=1), prefix=".partial-",
                         suffix=".json")
            return True
        except OSError:
            return False

    def usage(self) -> FolderUsage:
        """How many entries the file holds and its size in bytes (0 and 0 when there is none)."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return FolderUsage(0, 0)
        return FolderUsage(len(self.entries()), size)

    def clear(self) -> FolderUsage:
        """Delete the file, and the partial writes of it that killed processes left (older than a day), when
        their content is such a file; returns what was removed. Any other file stays, whatever its name."""
        held = self.usage() if self.proves(self.path) else FolderUsage(0, 0)
        if held.bytes:
            self.path.unlink(missing_ok=True)
        cutoff = datetime.now(UTC).timestamp() - STALE_PARTIAL_S
        for partial in self.path.parent.glob(".partial-*.json") if self.path.parent.is_dir() else []:
            try:
                if partial.stat().st_mtime < cutoff and self.proves(partial):
                    partial.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
        return held
