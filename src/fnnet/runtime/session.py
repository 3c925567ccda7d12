"""Where one training run executes, as ``fit`` sees it: one object for signals, processes, checkpoints, devices.

``fit`` makes one ``Session`` and asks it, in order:

- ``with Session(config, record)``: watch Ctrl-C and SIGTERM (a process other
  than 0 from here on; process 0 from the moment it holds the checkpoint
  folder), and make every process agree on the run's settings;
- ``start_from(state)``: open the checkpoint folder (process 0 alone) and, with
  ``resume``, continue from its newest good checkpoint, which process 0 reads
  and the others receive;
- ``place(state, data)``: one device as it is, several through
  ``fnnet.runtime.placement.data_parallel``;
- ``checkpoints`` and ``stop`` for the checkpointing hook.

Leaving the ``with`` waits for saves in flight, releases the folder and puts the
signal handlers back, also when training stopped with an error. With one
process every collective here is a no-op; a failure on one of several processes
stops all of them with one line (``fnnet.runtime.collective``).

Examples:
  >>> import fnnet
  >>> from fnnet.training.config import resolve
  >>> run = resolve("nn", steps=4, sizes=(2, 3, 4, 1))
  >>> with Session(run.config, run.config.record()) as session:
  ...     state, losses = session.start_from("the initial state")
  >>> state, losses, session.checkpoints
  ('the initial state', None, None)
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.errors import ConfigError
from fnnet.runtime.collective import agreed, check_same_run, share_from_first


def agreed_settings(config, record: dict) -> dict:
    """What every process of a run must have been started with: the run's record, and the settings that decide
    where chunks end and which collectives run (steps, chunks, checkpoints, where the data comes from)."""
    return {**record, "steps": config.steps, "log_every": config.log_every,
            "data": "local" if config.local_data else record["data"],
            "checkpoints": config.checkpoint_dir is not None, "resume": config.resume,
            "checkpoint_every": config.checkpoint_every}


class Session(contextlib.AbstractContextManager):
    """The runtime side of one run (``config``: a ``fnnet.training.config.RunConfig``; ``record``: its record).

    Attributes:
      checkpoints: the run's ``Checkpoints`` once ``start_from`` opened them (process 0, or the only one), else None.
      stop: the ``signals.StopRequest`` that turns Ctrl-C and SIGTERM into a stop at the next chunk, while the
        run has a checkpoint folder; else None.
    """

    def __init__(self, config, record: dict):
        self.config, self.record = config, record
        self.checkpoints = None
        self.stop = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Session":
        with contextlib.ExitStack() as stack:  # what is set up here is undone here if the processes disagree
            self.stop = self._watch_signals_early(stack)
            check_same_run(agreed_settings(self.config, self.record))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    @property
    def checkpointing(self) -> bool:
        """Whether the run saves checkpoints (on every process: process 0 writes, the others take part)."""
        return self.config.checkpoint_dir is not None

    def start_from(self, state):
        """``(state, losses)`` where the run starts: ``(state, None)``, or with ``resume`` the newest good
        checkpoint's state (``state`` gives its structure) and the losses before it. Opens the checkpoint
        folder first, when the run has one (closed when the session ends)."""
        if not self.checkpointing:
            return state, None
        self._open_checkpoints()
        if not self.config.resume:
            return state, None
        return self._restore(state)

    def place(self, state, data):
        """``(state, data, batch_sharding)``: one device as they are, several through ``data_parallel``."""
        if len(self.config.devices) == 1:
            return state, data, None
        from fnnet.runtime.placement import data_parallel

        return data_parallel(list(self.config.devices), state, data, self.config.batch_size is not None,
                             self.config.local_data)

    def _watch_signals_early(self, stack: contextlib.ExitStack):
        """With several processes and a checkpoint folder, a process other than 0 watches for Ctrl-C and SIGTERM
        from before the processes first meet (``check_same_run``), so a signal to it is kept from the moment
        process 0 can hold the folder's lock; None otherwise (process 0 watches from its lock on)."""
        if not self.checkpointing or jax.process_index() == 0:
            return None
        from fnnet.runtime.signals import StopRequest

        stop = StopRequest(str(self.config.checkpoint_dir)).install()
        stack.callback(stop.uninstall)
        return stop

    def _open_checkpoints(self) -> None:
        """Process 0 opens the run's folder, checked and locked, and watches for Ctrl-C and SIGTERM from then on;
        the others learn whether it could (and keep watching through their early ``stop``)."""
        from fnnet.runtime.checkpoint import Checkpoints

        def open_folder():
            if jax.process_index() != 0:
                return None
            checkpoints = Checkpoints.open(self.config.checkpoint_dir, resume=self.config.resume)
            self._stack.callback(checkpoints.close)  # waits for saves in flight, also when training stopped with an error
            return checkpoints

        self.checkpoints = agreed(open_folder, "open the checkpoint folder")
        if self.checkpoints is not None:
            self.stop = self.checkpoints.stop

    def _restore(self, template):
        """``(state, losses)`` from the newest good checkpoint; with several processes process 0 reads it and
        the others receive it."""
        def read():
            if self.checkpoints is None:
                return template, None
            state, losses = self.checkpoints.restore(template, self.record)
            if int(state.step) > self.config.steps:
                raise ConfigError(f"the newest checkpoint is at step {int(state.step)}, past steps={self.config.steps}")
            return state, losses

        state, losses = agreed(read, "resume from its checkpoint")
        return _share_start(state, losses)


def _share_start(state, losses):
    """Process 0's ``(state, losses)`` on every process (the others pass their own, of the same structure)."""
    if jax.process_count() == 1:
        return state, losses
    steps = int(share_from_first(np.int32(0 if losses is None else len(losses))))
    losses = np.zeros(steps, np.float32) if losses is None else np.asarray(losses, np.float32)
    params, opt_state, key, step, losses = share_from_first(
        (state.params, state.opt_state, jax.random.key_data(state.key), np.int32(state.step), losses))
    return state._replace(params=params, opt_state=opt_state, key=jax.random.wrap_key_data(key),
                          step=jnp.asarray(step, np.int32)), losses
