"""``show --plot FILE``: a figure written as .png, .svg or .pdf, marked as automl-tl's own.

The file named is the file written: a name without an extension gets ``.png`` (and is printed with it),
an existing folder is refused rather than turned into ``FOLDER.png`` beside it, and any other extension is
refused before anything is drawn. Each format carries the mark matplotlib can write into it (PNG text
``Software``, SVG and PDF ``Creator``), so a later ``--plot`` to the same name replaces it without asking;
a file without the mark needs ``--overwrite`` (see ``runtime.owned_files``)."""

from __future__ import annotations

import io
import stat
import struct
from pathlib import Path
from typing import Any

from automl_tl.errors import UserError
from automl_tl.runtime.owned_files import check_file_target, refuse_special, write_file

OPTION = "--plot"
EXAMPLE_NAME = "latency.png"
MARK = "automl-tl"
FORMATS = ("png", "svg", "pdf")
_METADATA_KEY = {"png": "Software", "svg": "Creator", "pdf": "Creator"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MARK = struct.pack(">I", len(f"Software\0{MARK}")) + f"tEXtSoftware\0{MARK}".encode()
_SVG_MARK = f"<dc:creator><cc:Agent><dc:title>{MARK}</dc:title>".encode()
_PDF_MARK = f"/Creator ({MARK})".encode()


def plot_is_ours(head: bytes, tail: bytes) -> bool:
    """Whether a file, from its first and last bytes, is a plot automl-tl wrote."""
    if head.startswith(_PNG_SIGNATURE):
        return _PNG_MARK in head
    if head.lstrip().startswith(b"<?xml"):
        return _SVG_MARK in b"".join(head.split())
    return head.startswith(b"%PDF-") and _PDF_MARK in tail


def plot_target(path: Path, option: str = OPTION, formats: tuple[str, ...] = FORMATS) -> tuple[Path, str]:
    """The file ``--plot PATH`` (or another ``option``) writes and its format, or a UserError before anything is
    drawn. The path as named is checked first: a link, device, FIFO, socket or folder there is refused, never
    written beside."""
    info = refuse_special(path, option, EXAMPLE_NAME)
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UserError(f"{option} {path} is a folder. Name the plot's file, e.g. {option} {path / EXAMPLE_NAME}; "
                        f"nothing was written.")
    suffix = path.suffix.lower().lstrip(".")
    if not suffix:
        return path.with_name(path.name + ".png"), "png"
    if suffix not in formats:
        endings = ", ".join(f".{f}" for f in formats)
        raise UserError(f"{option} {path}: the plot cannot be written as a .{suffix} file. Name a file ending in "
                        f"{endings} (a name without an extension gets .png); nothing was written.")
    return path, suffix


def check_plot_target(path: Path, overwrite: bool) -> tuple[Path, str]:
    """``plot_target``, then the owned-file checks on the file it names, before anything is drawn."""
    target, fmt = plot_target(path)
    check_file_target(target, OPTION, plot_is_ours, overwrite, EXAMPLE_NAME)
    return target, fmt


def write_plot(figure: Any, path: Path, overwrite: bool) -> Path:
    """Draw ``figure`` into the file ``--plot PATH`` names, marked as automl-tl's, then close the figure;
    returns the file written."""
    import matplotlib.pyplot as plt

    try:
        target, fmt = check_plot_target(path, overwrite)
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=110, bbox_inches="tight", metadata={_METADATA_KEY[fmt]: MARK})
    finally:
        plt.close(figure)
    return write_file(target, buffer.getvalue(), OPTION, plot_is_ours, overwrite, EXAMPLE_NAME)
