"""``automl-tl report``: one self-contained HTML page about a finished study."""

from automl_tl.report.page import write_report

__all__ = ["write_report"]
