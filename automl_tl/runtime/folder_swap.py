"""Replacing one folder by another so that no interrupt and no kill leaves neither in place.

Where Linux and the file system allow it, the two folders trade places in one system call
(``renameat2(RENAME_EXCHANGE)``): at every instant the target is the old folder or the new one. Elsewhere
(an older kernel, NFS, another OS) it takes two renames, the old folder moved aside first; a kill between
them leaves the old folder complete under the aside name, where the caller's next run finds it. In both
cases SIGINT, SIGTERM and SIGHUP wait until the swap is done (``signals_deferred``), and a failure between
the two renames puts the old folder back.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

AT_FDCWD = -100
RENAME_EXCHANGE = 2
DEFERRED_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
# What renameat2 answers where the kernel or the file system cannot exchange: then two renames do it.
_CANNOT_EXCHANGE = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP})


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Inside the block SIGINT, SIGTERM and SIGHUP are only noted; each one that arrived is raised again,
    to the handler that was in place (KeyboardInterrupt, the CLI's own, or the default that ends the
    process), as soon as the block is left. A handler, not a signal mask: the kernel may hand a signal to
    any thread, and Python runs every handler in the main thread. Off the main thread, where no handler can
    be set, nothing is deferred (no handler runs in that thread either)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def note(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {sig: signal.getsignal(sig) for sig in DEFERRED_SIGNALS}
    held = [sig for sig, handler in previous.items() if handler is not None]  # None: set outside Python, left alone
    for sig in held:
        signal.signal(sig, note)
    try:
        yield
    finally:
        for sig in held:
            signal.signal(sig, previous[sig])
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


@functools.cache
def _renameat2() -> Callable[..., Any] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc 2.28+ / not Linux
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths atomically; False, with nothing changed, where the system cannot."""
    function = _renameat2()
    if function is None:
        return False
    if function(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _CANNOT_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def replace_folder(new: Path, target: Path, aside: Path) -> Path:
    """Put the folder ``new`` at ``target``, an existing folder, and return where the old one is now
    (``new``'s former name after an exchange, else ``aside``) for the caller to delete."""
    try:
        with signals_deferred():
            if exchange(new, target):
                return new
            os.rename(target, aside)
            os.rename(new, target)
            return aside
    except BaseException:
        # An exception between the two renames (one a signal handler raised, or a failed second rename):
        # the target is empty-handed, so the old folder goes back before anything else happens.
        with signals_deferred():
            if not os.path.lexists(target) and os.path.isdir(aside):
                os.rename(aside, target)
        raise
