"""``automl-tl report``: one self-contained HTML page about a finished study."""

from .page import write_report

__all__ = ["write_report"]
