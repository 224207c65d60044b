"""Errors that reach the user as a short message instead of a traceback."""

from __future__ import annotations

__all__ = ["TrialFailure", "UserError"]


class UserError(Exception):
    """Bad input or a bad setting: the CLI prints the message and exits with code 2.

    The message should be one short paragraph that names the file or setting
    and says what to do about it. Plugins raise it too: a dataset adapter's
    ``discover`` for data it cannot read (``raise UserError(f"{path}: no images found.
    Put one sub-folder per class in it.")``), a framework adapter's ``load`` for a
    damaged file. During a search, a ``UserError`` raised inside a trial fails only
    that trial, with the message as its reason.
    """


class TrialFailure(Exception):
    """A trial could not finish (NaN loss, a backbone that raised, ...).

    The study records the trial as failed with this message and goes on. An adapter
    may raise it from a trial session to fail the trial with a message of its own.
    """
