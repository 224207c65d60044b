"""Thumbnails for the report, embedded as data URIs at one fixed size: the longer side ``THUMBNAIL_PX``, the
aspect ratio kept.

An image already decoded (a test image the model got wrong) is scaled from its array. A file named by the
data audit is read with the project's safe reader (``read_regular_file``, then ``decode_image`` with the
study's pixel cap, EXIF orientation, transparency over white), padded to a square so its shape shows. A path
that leads outside the data folder, a missing file, a special file or an image that cannot be decoded just
gets no thumbnail (None)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from automl_tl.data.images import DEFAULT_MAX_PIXELS, BadImage, decode_image
from automl_tl.data.paths import resolve_under
from automl_tl.deploy.predict import read_regular_file
from automl_tl.errors import UserError
from automl_tl.types import ResizeRule

THUMBNAIL_PX = 112  # the longer side of every thumbnail in the report
_QUALITY = 88


def _jpeg_uri(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def array_thumbnail(image: np.ndarray, side: int = THUMBNAIL_PX) -> str:
    """An (H, W, 3) uint8 image as a JPEG data URI whose longer side is ``side``: a small image is enlarged
    with hard pixel edges (what the model saw), a large one reduced smoothly."""
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB")
    scale = side / max(picture.width, picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return _jpeg_uri(picture.resize(size, resample))


def file_thumbnail(root: Path, relpath: str, max_pixels: int = DEFAULT_MAX_PIXELS,
                   side: int = THUMBNAIL_PX) -> str | None:
    """The image file ``relpath`` of the data folder ``root`` as a ``side``-px JPEG data URI (white padding
    around an image that is not square), or None when it is outside ``root`` or cannot be read as an image."""
    try:
        path = resolve_under(root.expanduser(), relpath)  # links followed; outside the data folder: UserError
        pixels = decode_image(read_regular_file(path), side, max_pixels, ResizeRule(mode="pad"))
    except (UserError, BadImage, OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop
        return None
    return array_thumbnail(pixels, side)


def data_root(location: str) -> Path | None:
    """The folder the data's file names are relative to: the data folder, or the folder of its CSV file."""
    if not location:
        return None
    path = Path(location).expanduser()
    return path if path.is_dir() else path.parent
