"""Stopping cleanly.  While a geonox session or command runs, SIGTERM (what CI sends on
cancel) and SIGINT raise :class:`~geonox.errors.Interrupted` in the main thread, so every
``with`` on the way out does its part: the running command's process group is killed
(:func:`geonox.executors.run_child`), containers are removed, and an artifact being built
is removed instead of being marked complete.  The process then exits non-zero."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from geonox.errors import Interrupted

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn the first SIGTERM/SIGINT into Interrupted; later ones wait for the cleanup."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: object) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
