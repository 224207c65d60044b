"""Native libraries' log lines on file descriptor 2 go to a logger; other text written there stays on stderr."""

from __future__ import annotations

import logging
import os

import pytest

from automl_tl.runtime.native_logs import native_log_level, native_stderr_to_log, python_logs_to_log

ABSL_INFO = ("I0000 00:00:1796672401.986612   12603 port.cc:153] oneDNN custom operations are on. You may see "
             "slightly different numerical results")
BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def test_native_lines_are_told_from_other_text() -> None:
    assert native_log_level(ABSL_INFO) == logging.INFO
    assert native_log_level("E1207 19:40:36.123456 1234 cuda_dnn.cc:8310] Unable to register cuDNN factory") == logging.ERROR
    assert native_log_level(BANNER) == logging.DEBUG
    assert native_log_level("Error: the data folder is empty") is None
    assert native_log_level("I0000 is not a log line") is None


def test_what_native_code_writes_to_stderr_goes_to_the_log(capfd: pytest.CaptureFixture[str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test_native_logs")
    with caplog.at_level(logging.DEBUG, logger="test_native_logs"), native_stderr_to_log(logger):
        os.write(2, f"{BANNER}\n{ABSL_INFO}\nnot a log line\n".encode())  # as C++ writes: to the descriptor
    assert capfd.readouterr().err == "not a log line\n"
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.DEBUG, BANNER), (logging.INFO, ABSL_INFO)]


def test_a_framework_loggers_own_terminal_handler_is_removed(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    logger = logging.getLogger("test_native_logs.framework")
    own = logging.StreamHandler(sys.stderr)
    logger.addHandler(own)
    try:
        python_logs_to_log("test_native_logs.framework")
        logger.warning("a framework's warning")
        assert own not in logger.handlers
        assert "a framework's warning" not in capsys.readouterr().err
    finally:
        logger.handlers.clear()
