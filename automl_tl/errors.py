"""Errors that reach the user as a short message instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a bad setting: the CLI prints the message and exits with code 2.

    The message should be one short paragraph that names the file or setting
    and says what to do about it.
    """


class TrialFailure(Exception):
    """A trial could not finish (NaN loss, a backbone that raised, ...).

    The study records the trial as failed with this message and goes on.
    """
