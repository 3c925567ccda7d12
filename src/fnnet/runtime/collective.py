"""Several processes agreeing: every process calls these at the same point of a run, and they meet there.

With one process each is a no-op (or returns its argument). With several
(``fnnet.runtime.distributed``) they go through JAX's collectives, so a process
that fails or was started differently stops every process with one line,
instead of leaving the others waiting forever in the next collective.

Examples:
  >>> process_values(15).tolist()
  [15]
  >>> agreed(lambda: 42, "count to 42")  # work that succeeds: its value, on every process
  42
"""

from __future__ import annotations

import hashlib
import json
from typing import Callable, TypeVar

import jax
import numpy as np

from fnnet.errors import ConfigError

T = TypeVar("T")


def process_values(value: int) -> np.ndarray:
    """Every process's ``value`` (a small integer), in process order, gathered through a collective.

    Every process must call it at the same point of the run. With one process it
    is just ``[value]``.

    Examples:
      >>> process_values(15).tolist()
      [15]
    """
    if jax.process_count() == 1:
        return np.array([int(value)])
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.int32(value))).reshape(-1)


def same_outcome(error: BaseException | None, what: str) -> None:
    """Raise ``error`` where it happened; with several processes, make the others stop there too.

    Process 0 alone does some things for the run (it owns the checkpoint
    folder). Every process calls this at the same point with what went wrong
    on it (None if nothing did), so when one failed the others stop with one
    line naming it, instead of going on and waiting forever for it.

    Examples:
      >>> same_outcome(None, "open the checkpoint folder")  # nothing failed: nothing happens
    """
    failed = process_values(error is not None)
    if error is not None:
        raise error
    if failed.any():
        raise ConfigError(f"process {int(np.argmax(failed))} could not {what} (see its error); "
                          f"process {jax.process_index()} stops too")


def agreed(work: Callable[[], T], what: str) -> T:
    """``work()``'s value, with its failure shared (``same_outcome``): every process calls this at the same
    point; where ``work`` raised it raises, and the other processes stop with one line naming ``what``.

    Examples:
      >>> agreed(lambda: 1 / 0, "divide")
      Traceback (most recent call last):
      ...
      ZeroDivisionError: division by zero
    """
    error, value = None, None
    try:
        value = work()
    except Exception as err:
        error = err
    same_outcome(error, what)
    return value


def share_from_first(tree):
    """Process 0's values of ``tree`` (NumPy arrays), on every process; the others pass arrays of the same shapes.

    Examples:
      >>> share_from_first({"step": np.int32(7)})["step"].tolist()
      7
    """
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def check_same_run(record: dict) -> None:
    """ConfigError on every process unless all processes were started with the same run configuration.

    Each process hashes ``record`` and the hashes are gathered through the
    coordinator, so a process started with other settings (say another
    ``--steps``) stops every process at the start with one line, instead of
    training apart and then waiting forever for the others at the end.

    Examples:
      >>> check_same_run({"lesson": "nn", "steps": 500})  # one process: nothing to compare
    """
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).digest(), np.uint8)
    every = np.asarray(multihost_utils.process_allgather(digest))
    differ = [i for i in range(len(every)) if not np.array_equal(every[i], every[0])]
    if differ:
        raise ConfigError(f"process {differ[0]} was started with other settings than process 0 (their run "
                          "configurations differ); start every process with the same command")


def peer_lost(err: BaseException) -> str | None:
    """When ``err`` is the runtime's report that another process of this run is gone, a one-line reason.

    With several processes, a peer that dies breaks the next cross-process
    sum (gloo: "Connection reset by peer"): JAX raises ``JaxRuntimeError``
    here at once. Waiting for anything else would be worse: at exit JAX's
    shutdown barrier waits out the dead peer's heartbeat (about 100 s) and
    then aborts the process with pages of C++ log.

    Examples:
      >>> peer_lost(ValueError("not about processes")) is None
      True
    """
    if type(err).__name__ != "JaxRuntimeError" or jax.process_count() <= 1:
        return None
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:200]
