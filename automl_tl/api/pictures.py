"""A figure of a study as Jupyter shows it inline, and as a file a script keeps."""

from __future__ import annotations

import base64
from pathlib import Path

PNG_URI = "data:image/png;base64,"


class Picture:
    """A drawn figure (PNG). Jupyter shows it inline (``_repr_png_``); ``save`` writes it to a file."""

    def __init__(self, png: bytes, title: str) -> None:
        self.png, self.title = png, title

    @classmethod
    def from_data_uri(cls, uri: str, title: str) -> Picture:
        """A figure the report drew as a PNG data URI."""
        if not uri.startswith(PNG_URI):
            raise ValueError("not a PNG data URI")
        return cls(base64.b64decode(uri[len(PNG_URI):]), title)

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the PNG to ``path`` (a name without an extension gets ``.png``), marked as automl-tl's, so a
        later save to the same name replaces it; any other existing file needs ``overwrite``, and a link, a
        device or a folder is never replaced. Returns the file written."""
        from automl_tl.report.plot_file import EXAMPLE_NAME, plot_is_ours, plot_target
        from automl_tl.runtime.owned_files import write_file

        target, _ = plot_target(Path(path), "save(path)", ("png",))  # a folder or a special file is refused
        return write_file(target, marked_png(self.png), "save(path)", plot_is_ours, overwrite, EXAMPLE_NAME)

    def __repr__(self) -> str:
        return f"<Picture {self.title!r}: {len(self.png)} bytes of PNG>"


def marked_png(png: bytes) -> bytes:
    """``png`` with the text chunk that marks automl-tl's own plot files (see ``report/plot_file.py``)."""
    import io

    from PIL import Image, PngImagePlugin

    from automl_tl.report.plot_file import MARK

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", MARK)
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
