"""The side effects of a run, each a hook the host loop calls after every chunk.

A hook is a callable ``hook(progress)`` (``fnnet.loop.Progress``); it may have
``every`` (steps: the loop ends a chunk at its multiples too) and ``end(progress)``
(called once when the run ends, also after an early stop). The order matters:
``DivergenceGuard`` comes first so that no other hook sees a non-finite chunk.

Examples:
  >>> import numpy as np
  >>> from fnnet.training.loop import Progress
  >>> guard = DivergenceGuard(lr=0.1)
  >>> guard(Progress(10, 20, np.array([3.0, 2.0]), None, history=np.arange(10.0)))
  >>> guard(Progress(12, 20, np.array([1.0, np.inf]), None, history=np.arange(12.0)))
  Traceback (most recent call last):
  ...
  fnnet.errors.DivergenceError: training diverged at step 11: loss is inf with learning rate 0.1; try a smaller --lr
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np

from fnnet.errors import ConfigError, DivergenceError, StorageError
from fnnet.training.loop import Progress, StopTraining

__all__ = ["DivergenceGuard", "ProgressBar", "Callback", "Checkpointing", "StopTraining"]


class DivergenceGuard:
    """Stop with ``DivergenceError`` at the first loss that is not finite."""

    def __init__(self, lr: float | None):
        self.lr = float("nan") if lr is None else float(lr)

    def __call__(self, progress: Progress) -> None:
        finite = np.isfinite(progress.losses)
        if not finite.all():
            bad = int(np.argmin(finite))
            step = progress.step - len(progress.losses) + bad
            raise DivergenceError(step, progress.losses[bad], self.lr, progress.history[: step + 1])


class ProgressBar(contextlib.AbstractContextManager):
    """A rich progress bar on stderr (steps, last loss, elapsed time); use as a context manager."""

    def __init__(self, label: str, total: int, completed: int = 0):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task(label, total=total, completed=completed, loss="…")
        self._done = completed

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def __call__(self, progress: Progress) -> None:
        self._bar.update(self._task, advance=progress.step - self._done, loss=f"{progress.losses[-1]:.4g}")
        self._done = progress.step


class Callback:
    """Your function, called with each ``Progress``; it may raise ``StopTraining`` to end the run early."""

    def __init__(self, fn: Callable[[Progress], None]):
        if not callable(fn):
            raise ConfigError(f"callback must be callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, progress: Progress) -> None:
        self.fn(Progress(progress.step, progress.steps, progress.losses, progress.params))


class Checkpointing:
    """Save a checkpoint every ``every`` steps and when the run ends (``fnnet.checkpoint.Checkpoints``).

    With ``stop`` (a ``fnnet.signals.StopRequest``): after Ctrl-C or SIGTERM it
    saves at the step the chunk in flight reached and raises
    ``fnnet.errors.Interrupted``, so no step before that boundary is lost.
    With several processes only process 0 writes (the others pass
    ``checkpoints=None``), a signal to any process stops every one of them
    after the same chunk (``StopRequest.everywhere``), and a save that fails
    on process 0 (a full disk) stops the others there too, with ``StorageError``.
    """

    def __init__(self, checkpoints, record: dict, every: int, stop=None):
        self.checkpoints, self.record, self.every, self.stop = checkpoints, record, every, stop
        self._saved = None

    def __call__(self, progress: Progress) -> None:
        due = progress.step % self.every == 0 or progress.step == progress.steps
        signum, process = self._everywhere(self._save(progress) if due else None)
        if signum is not None and progress.step < progress.steps:
            if not due:
                self._everywhere(self._save(progress))  # the stop's own save, its outcome shared too
            raise self.stop.interrupted(progress.step, signum, process)

    def end(self, progress: Progress) -> None:
        if progress.state is not None and len(progress.losses) and self._saved != progress.step:
            error = self._save(progress)
            if error is not None:
                raise error

    def _save(self, progress: Progress) -> BaseException | None:
        """Start this step's save (process 0, or the only one); the error it raised, if any."""
        self._saved = progress.step
        if self.checkpoints is None:
            return None
        try:
            self.checkpoints.save(progress.state, progress.history, self.record)
        except Exception as err:  # raised below, once every process knows (several processes)
            return err
        return None

    def _everywhere(self, error: BaseException | None):
        """``(signal, process)`` from every process; raise ``error`` here, and stop the others when a save failed."""
        if self.stop is None:
            if error is not None:
                raise error
            return None, None
        signum, process, failed = self.stop.everywhere(error is not None)
        if error is not None:
            raise error
        if failed is not None:
            import jax

            raise StorageError(f"process {failed} could not write the checkpoint (see its error); "
                               f"process {jax.process_index()} stops too")
        return signum, process
