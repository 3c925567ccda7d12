"""orbax-checkpoint, imported with the noise it makes around fnnet's own messages kept off stderr.

fnnet reports every checkpoint failure itself, in one line (``fnnet.runtime.checkpoint``). Three behaviours
of orbax (read in orbax-checkpoint 0.12) would print more around that line; each filter below names the one
it works around and drops exactly that, nothing else:

- orbax logs through absl: an INFO line per save (``CheckpointManager.save``), WARNINGs for every read-only
  manager (``CheckpointManager.__init__``: "Given directory is read only", and
  ``CheckpointManagerOptions.__post_init__``: "read_only=True, setting max_to_keep=None"), and an ERROR with
  a traceback when a background save fails (``_AsyncManager._thread_func``: "Failed to run ... Handler
  Commit operations"). Before absl's flags are parsed its handler writes warnings and errors to stderr.
- A failed save's other writes call back into a closed event loop (``is_late_tensorstore_callback``).
- asyncio logs those writes' errors again when they are collected (``is_orbax_failed_write``).

Examples:
  >>> ocp = import_orbax()
  >>> ocp.__name__
  'orbax.checkpoint'
"""

from __future__ import annotations

import logging
import sys

from fnnet.runtime.storage import storage_reason


def import_orbax():
    """``orbax.checkpoint``, with absl's logger silenced and the two filters installed (once)."""
    logging.getLogger("absl").setLevel(logging.CRITICAL)  # orbax logs every save, and every failure we report
    install_filters()  # the late callback can come after the run ends, so the filters stay
    import orbax.checkpoint as ocp

    return ocp


def is_late_tensorstore_callback(unraisable) -> bool:
    """The one harmless error orbax leaves behind when a save fails (a full disk).

    Upstream: orbax runs a save's commit in its background thread with
    ``asyncio_utils.run_sync``, which runs the coroutine on a fresh event loop
    (``loop.run_until_complete``) and closes that loop in a ``finally`` as soon
    as the coroutine raises. The commit gathers one tensorstore write per array
    fragment (``asyncio.gather`` in ``serialization.async_serialize_from_host``),
    so the first write that fails ends it; the other writes' tensorstore futures
    still finish later, in tensorstore's own thread, and their done-callback
    ``loop.call_soon_threadsafe`` raises "Event loop is closed". Python can only
    print that (a traceback over our one-line error, about one failed save in
    ten). The save's real error reaches us through orbax anyway, so nothing is
    lost by dropping exactly this one.
    """
    exc, tb = unraisable.exc_value, unraisable.exc_traceback
    if unraisable.object is not None or type(exc) is not RuntimeError or str(exc) != "Event loop is closed":
        return False
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return frames == ["call_soon_threadsafe", "_check_closed"]


def is_orbax_failed_write(record: logging.LogRecord) -> bool:
    """asyncio's "... exception was never retrieved" for one of orbax's writes that failed on storage.

    Upstream: the same race as ``is_late_tensorstore_callback``. orbax's
    ``asyncio.gather`` (without ``return_exceptions``) hands on only the first
    failure; the writes gathered with it fail too, after orbax stopped
    listening, and asyncio logs each (logger ``asyncio``) when it is garbage
    collected. Their error (a full disk) is the one the save already reported.
    """
    exc = record.exc_info[1] if record.exc_info else None
    text = str(record.msg)  # "Task (or Future, _GatheringFuture) exception was never retrieved\nfuture: <...>"
    return (" exception was never retrieved" in text.split("\n", 1)[0] and "orbax" in text
            and exc is not None and storage_reason(exc) is not None)


def keep_log_record(record: logging.LogRecord) -> bool:
    """The filter on asyncio's logger: keep every record but ``is_orbax_failed_write``'s."""
    return not is_orbax_failed_write(record)


def install_filters() -> None:
    """Keep orbax's leftovers of a failed save off stderr (once, however often it is called).

    ``is_late_tensorstore_callback`` goes in front of ``sys.unraisablehook``
    and ``keep_log_record`` filters asyncio's logger; everything else passes on.
    """
    current = sys.unraisablehook
    if not getattr(current, "_fnnet_filter", False):

        def hook(unraisable):
            if not is_late_tensorstore_callback(unraisable):
                current(unraisable)

        hook._fnnet_filter = True
        sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(keep_log_record)  # a no-op when it is there already
