"""Keeping every data path inside its data root."""

from __future__ import annotations

from pathlib import Path

from automl_tl.errors import UserError


def resolve_under(root: Path, candidate: str | Path, *, context: str = "") -> Path:
    """Resolve ``candidate`` (relative to ``root`` unless absolute), following symlinks.

    Returns the resolved path, or raises ``UserError`` when it lands outside the
    resolved ``root`` (a ``..`` step, an absolute path elsewhere, or a symlink that
    points out). ``context`` (for example ``"labels.csv line 4"``) starts the message.
    """
    base = Path(root).resolve()
    path = Path(candidate)
    if not path.is_absolute():
        path = base / path
    resolved = path.resolve()
    if resolved == base or resolved.is_relative_to(base):
        return resolved
    where = f"{context}: " if context else ""
    raise UserError(
        f"{where}{str(candidate)!r} leads to {resolved}, which is outside the data folder {base}. "
        f"Keep every image inside the data folder: no '..' steps, absolute paths elsewhere, "
        f"or symlinks that point out of it."
    )
