"""The host loop: a run as compiled chunks, with hooks between them.

``run_loop`` takes a ``Train`` (``fnnet.core``), a start state and the data, and
runs chunks of steps until ``steps``. A chunk ends at every multiple of
``log_every`` and of each hook's ``every``; after each one the loop reads the
chunk's losses (the one host sync of the chunk) and calls every hook with a
``Progress``. Hooks do all the side effects: progress bar, divergence guard,
checkpoints, your callback. A hook ends the run early by raising
``StopTraining``; the loop then returns what was trained so far.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

from fnnet.training.core import Batch, Train, TrainState
from fnnet.runtime.placement import host_value


class Progress(NamedTuple):
    """What the hooks (and ``fit``'s callback) see after each chunk."""

    step: int  # steps done so far
    steps: int  # steps in the run
    losses: np.ndarray  # the losses of the chunk just run
    params: Any  # parameters after ``step`` steps
    state: TrainState | None = None  # the whole training state after ``step`` steps
    history: np.ndarray | None = None  # every loss so far, restored ones included


class StopTraining(Exception):
    """Raise from a callback (or a hook) to end training after this chunk and keep the result so far.

    Examples:
      >>> import fnnet
      >>> def stop_early(progress):
      ...     if progress.losses[-1] < 1e3:
      ...         raise fnnet.StopTraining
      >>> result = fnnet.fit("nn", steps=500, log_every=10, callback=stop_early)
      >>> len(result.losses) < 500, result.stopped
      (True, True)
    """


class LoopResult(NamedTuple):
    state: TrainState  # the state after the last chunk run
    losses: np.ndarray  # every loss, restored ones included
    compile_seconds: float  # compiling chunks (0.0 when every chunk was compiled before)
    run_seconds: float  # running them, compile excluded
    steps_run: int  # steps this call ran (a resumed run counts only the new ones)
    stopped: bool  # a hook raised StopTraining


def chunk_ends(done: int, steps: int, every: Sequence[int]) -> int:
    """The length of the next chunk: up to the next multiple of any of ``every``, or the end.

    Examples:
      >>> chunk_ends(0, 25, [10]), chunk_ends(20, 25, [10]), chunk_ends(4, 30, [10, 6])
      (10, 5, 2)
    """
    return min([k - done % k for k in every] + [steps - done])


def run_loop(train: Train, state: TrainState, data: Batch, lr, *, steps: int, log_every: int,
             hooks: Sequence = (), losses: np.ndarray | None = None) -> LoopResult:
    """Run ``train`` from ``state`` to step ``steps`` in chunks, calling ``hooks`` after each.

    Args:
      train: the pure functions of the run (``fnnet.core.make_train``).
      state: where to start (``state.step`` may be past 0: a resumed run).
      data: the batch, or the whole data set when the program takes minibatches.
      lr: the learning rate handed to the program (None when the optimizer holds it).
      steps: the step to stop at.
      log_every: the longest chunk; hooks run at least this often.
      hooks: callables ``hook(progress)``; a hook's ``every`` attribute (steps)
        adds chunk boundaries; its ``end(progress)`` method, if any, runs once
        when the run ends (also after an early stop).
      losses: the losses of the steps before ``state.step``.

    Returns:
      A ``LoopResult``.
    """
    curve: list[np.ndarray] = [] if losses is None else [np.asarray(losses)]
    compile_seconds = run_seconds = 0.0
    first = done = int(state.step)
    every = [log_every] + [h.every for h in hooks if getattr(h, "every", None)]
    progress, stopped = None, False
    while done < steps:
        length = chunk_ends(done, steps, every)
        runner, seconds = train.compiled(length, state, data, lr)
        compile_seconds += seconds
        start = time.perf_counter()
        state, chunk = runner(state, data, lr)
        chunk = host_value(chunk)  # the one host sync of the chunk
        run_seconds += time.perf_counter() - start
        curve.append(chunk)
        done += length
        progress = Progress(done, steps, chunk, state.params, state, np.concatenate(curve))
        try:
            for hook in hooks:
                hook(progress)
        except StopTraining:
            stopped = True
            break
    if progress is None:  # nothing left to run (resumed at the end)
        history = np.concatenate(curve) if curve else np.zeros(0)
        progress = Progress(done, steps, np.zeros(0), state.params, state, history)
    for hook in hooks:
        if hasattr(hook, "end"):
            hook.end(progress)
    start = time.perf_counter()
    state = jax.block_until_ready(state)
    run_seconds += time.perf_counter() - start
    return LoopResult(state, progress.history, compile_seconds, run_seconds, done - first, stopped)
