"""Ctrl-C and SIGTERM as a request to stop at the next chunk boundary, so a checkpointed run loses nothing.

``StopRequest.install()`` replaces the default SIGINT and SIGTERM handlers (only
those left at their defaults, only in the main thread) by one that records the
signal; the host loop reads ``requested`` after each chunk, saves a checkpoint
at that step and raises ``Interrupted``. The first signal restores the previous
handlers, so a second Ctrl-C stops at once, as usual. With several processes
the requests are shared after every chunk (``everywhere``): a signal to any one
of them stops all of them at the same step, and process 0 saves the checkpoint.
"""

from __future__ import annotations

import signal
import threading

import numpy as np

WATCHED = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Whether Ctrl-C or SIGTERM arrived since ``install()``; ``requested`` is the signal number or None.

    Examples:
      >>> before = signal.getsignal(signal.SIGTERM)
      >>> stop = StopRequest("runs/nn").install()
      >>> stop.requested is None  # no signal yet (the tests send real ones)
      True
      >>> stop.uninstall()
      >>> signal.getsignal(signal.SIGTERM) is before  # put back as it was
      True
    """

    def __init__(self, folder: str | None = None):
        self.requested: int | None = None
        self.folder = folder  # the checkpoint folder the run saves to before it stops
        self._previous: dict[int, object] = {}

    def install(self) -> "StopRequest":
        """Watch SIGINT and SIGTERM where their handlers are the defaults; a no-op outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in WATCHED:
            current = signal.getsignal(signum)
            if current in (signal.SIG_DFL, signal.default_int_handler):  # a user's handler, or SIG_IGN, stays
                self._previous[signum] = current
                signal.signal(signum, self._record)
        return self

    def _record(self, signum, frame) -> None:
        del frame
        if self.requested is None:
            self.requested = signum
        self.uninstall()  # a second signal acts at once

    def everywhere(self, failed: bool = False) -> tuple[int | None, int | None, int | None]:
        """``(signal, process, failed_process)`` over every process of the run, after a chunk.

        ``signal`` is the first signal any process received and ``process`` the
        one it was sent to (None, None if none); ``failed_process`` is the first
        process that passed ``failed=True`` (a checkpoint it could not write), or
        None. With several processes every one must call it after the same
        chunk: the values are gathered through a collective, so all of them stop
        at the same step. With one process, ``process`` is None.
        """
        import jax

        if jax.process_count() == 1:
            return self.requested, None, 0 if failed else None
        from fnnet.runtime.collective import process_values

        got = process_values((self.requested or 0) + (256 if failed else 0))
        failed_process = int(np.argmax(got >= 256)) if (got >= 256).any() else None
        signals = got % 256
        if not signals.any():
            return None, None, failed_process
        first = int(np.argmax(signals != 0))
        return int(signals[first]), first, failed_process

    def interrupted(self, step: int, signum: int | None = None, process: int | None = None):
        """The ``Interrupted`` that ends the run at ``step``, once its checkpoint is saved."""
        from fnnet.errors import Interrupted

        return Interrupted(step, self.folder, signum or self.requested or signal.SIGINT, process)

    def uninstall(self) -> None:
        """Put back the handlers ``install`` replaced."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
