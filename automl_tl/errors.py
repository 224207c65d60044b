"""Errors that reach the user as a short message instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["PluginContractError", "TrialFailure", "UserError", "weights_failures_as", "weights_unavailable"]


class UserError(Exception):
    """Bad input or a bad setting: the CLI prints the message and exits with code 2.

    The message should be one short paragraph that names the file or setting
    and says what to do about it. Plugins raise it too: a dataset adapter's
    ``discover`` for data it cannot read (``raise UserError(f"{path}: no images found.
    Put one sub-folder per class in it.")``), a framework adapter's ``load`` for a
    damaged file. During a search, a ``UserError`` raised inside a trial fails only
    that trial, with the message as its reason.
    """


class PluginContractError(UserError):
    """A plugin registered something that breaks the contract it implements: a backbone spec, a framework
    adapter or a dataset adapter that cannot work as declared. The message names the plugin, the item
    and the field at fault, and says what to write instead (``automl_tl.plugin.spec_checks``)."""


class TrialFailure(Exception):
    """A trial could not finish (NaN loss, a backbone that raised, ...).

    The study records the trial as failed with this message and goes on. An adapter
    may raise it from a trial session to fail the trial with a message of its own.
    """


def weights_unavailable(backbone: str, source: str, exc: BaseException, *, downloader: str, place: str,
                        place_env: str, url: str | None = None) -> UserError:
    """The one-paragraph error for pretrained weights that could not be downloaded or read, for any framework:
    ``downloader`` says who downloads them (e.g. "torch hub"), ``place`` is the folder they go to and
    ``place_env`` how users move it (e.g. "$TORCH_HOME/hub/checkpoints/")."""
    detail = " ".join(str(exc).split())[:300] or "no detail"
    return UserError(
        f"The pretrained weights of backbone {backbone!r} ({source}) could not be downloaded or read"
        f"{f' from {url}' if url else ''}: {type(exc).__name__}: {detail}. {downloader} downloads them on first use "
        f"into {place}, which needs network access once. Run the command again where the network is reachable, or "
        f"copy the weights file into {place} ({place_env}) yourself; a damaged or half-downloaded file there is "
        f"refused as well: delete it first. `automl-tl backbones` says whether the weights are here."
    )


@contextmanager
def weights_failures_as(is_failure: Callable[[BaseException], bool],
                        make_error: Callable[[BaseException], UserError]) -> Iterator[None]:
    """Inside this block, an exception that ``is_failure`` says is about weights that could not arrive
    becomes ``make_error(exc)``; a ``UserError`` and any other exception (a bug) pass through."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        if is_failure(exc):
            raise make_error(exc) from None
        raise
