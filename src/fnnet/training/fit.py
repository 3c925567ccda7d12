"""``fnnet.fit``: train a lesson or your own model with fnnet's compiled loop.

``fit`` reads top to bottom: resolve (``fnnet.config.resolve`` checks the
arguments and fills in defaults), init (``fnnet.core.make_train`` gives the
pure, compiled-once training functions and the start state), place (a
``fnnet.runtime.session.Session``, made once, puts the arrays on their devices
and holds everything about where the run executes: Ctrl-C and SIGTERM, several
processes agreeing, the checkpoint folder and a resume), loop
(``fnnet.loop.run_loop`` drives the chunks; the hooks, ``fnnet.hooks``, hold
every side effect). The names the rest of fnnet and its users import from here
(``TrainState``, ``train_step``, ``step_key`` ...) are re-exported from those
modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from fnnet.data import run_keys
from fnnet.lessons import NUMPY
from fnnet.runtime.session import Session
from fnnet.training.config import RunConfig, resolve
from fnnet.training.core import make_train
from fnnet.training.hooks import Callback, Checkpointing, DivergenceGuard, ProgressBar
from fnnet.training.loop import Progress, run_loop


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The outcome of ``fit``.

    Attributes:
      lesson: the lesson id, or your model's name.
      params: the trained parameters (the structure the model's init returns).
      losses: one loss per step, before that step's update (NumPy array); a
        resumed run's restored losses come first.
      compile_seconds: time spent compiling (0.0 when everything was cached).
      run_seconds: time spent running the steps, compile excluded.
      config: the run's record (``RunConfig.record()``): lesson, optimizer, lr, loss, seed, sizes ...
      steps_run: the steps this call ran (fewer than ``len(losses)`` after a resume).
      stopped: True when a callback ended the run early with ``fnnet.StopTraining``.
      model: the model that was trained (a lesson's, or yours).
    """

    lesson: str
    params: Any
    losses: np.ndarray
    compile_seconds: float
    run_seconds: float
    config: dict
    steps_run: int | None = None
    stopped: bool = False
    model: Any = None

    @property
    def steps_per_second(self) -> float:
        """Steps this call ran per second of running (compile excluded)."""
        steps = len(self.losses) if self.steps_run is None else self.steps_run
        return steps / self.run_seconds if self.run_seconds > 0 else float("inf")

    @property
    def module(self):
        """A new nnx module holding the trained parameters (for nnx models; the module you gave is unchanged)."""
        if not hasattr(self.model, "module"):
            raise AttributeError(f"{self.lesson!r} was not trained from an nnx module; use .params")
        return self.model.module(self.params)


def fit(
    model,
    *,
    steps: int | None = None,
    lr=None,
    optimizer=None,
    seed: int = 0,
    sizes=None,
    params=None,
    data: tuple | None = None,
    loss=None,
    batch_size: int | None = None,
    log_every: int | None = None,
    callback: Callable[[Progress], None] | None = None,
    progress: bool | None = None,
    dtype: str = "float32",
    checkpoint_dir=None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    devices: int | str | None = None,
    local_data: bool = False,
) -> FitResult:
    """Train a lesson, or your own model, and return its parameters and loss curve.

    Every argument left as ``None`` takes its default: for a classic lesson, the
    seed's (500 steps, the tutorial's optimizer and learning rate, sizes
    64/1000/100/10); for a sine lesson, the tutorial's (2000 steps, sin(x) on
    2000 points, its optimizer and rate); for your model, Adam at 1e-3 and the sum-of-squares loss.
    The same ``seed`` gives the same data, initial weights and losses, bit for bit.

    Args:
      model: a lesson id (a key of ``fnnet.LESSONS``); a ``fnnet.Model(init,
        apply)``; or an ``nnx.Module``, whose current parameters are the start
        (the module is left unchanged; ``result.module`` holds the trained ones).
      steps: number of training steps (default: the lesson's: 500 classic,
        2000 sine, 30000 sine_control_flow; 500 for your model).
      lr: a learning rate (finite, > 0) or an optax schedule ``step -> rate``.
        Default: the lesson's for its own optimizer, else
        ``fnnet.optimizers.DEFAULT_LRS`` for the (model, optimizer) pair.
      optimizer: ``"sgd"``, ``"momentum"``, ``"adam"``, ``"rmsprop"``, ``"sgd-by-hand"``, or any
        optax transformation (then leave ``lr`` None: it holds its own).
      seed: seeds the data, the initial weights, the minibatch order and the per-step keys.
      sizes: a classic lesson's ``Sizes(batch, d_in, hidden, d_out)``, a 4-tuple, or a
        dict naming some of them; the rest follow ``data`` and ``params``. (The
        sine lessons have fixed shapes: 2000 points of sin(x).)
      params: start from these weights instead of drawing them.
      data: ``(x, y)``: x (rows, features); y (rows, outputs), or (rows,)
        integer labels with ``loss="cross_entropy"``, or any (rows,) vector with
        a loss function of your own. Required for your own model.
      loss: ``"sse"`` (the tutorial's sum of squares), ``"mse"``,
        ``"cross_entropy"`` (logits against integer labels, via optax) or a
        function ``loss(y_pred, y) -> scalar``.
      batch_size: train on minibatches of this many rows, reshuffled every epoch
        inside the compiled loop (default: the whole data every step).
      log_every: steps per compiled chunk; progress, the finiteness check and
        ``callback`` happen between chunks (default: the lesson's print
        interval, 100, or 2000 for sine_control_flow).
      callback: called with a ``Progress`` after every chunk; raise
        ``fnnet.StopTraining`` in it to end early and keep the result so far.
      progress: show a progress bar on stderr; default: when stderr is a terminal.
      dtype: ``"float32"`` (the tutorial's) or ``"float64"`` (needs
        ``jax.enable_x64``). The numpy lesson is always float64.
      checkpoint_dir: save checkpoints (orbax) in this folder, which must be
        empty or missing unless ``resume``; missing parent folders are made
        (one line on stderr says so).
      checkpoint_every: steps between checkpoints (default ``log_every``); one
        is also saved at the end.
      resume: continue from the newest good checkpoint in ``checkpoint_dir``;
        the run then ends exactly where an uninterrupted one would, and
        ``losses`` holds the whole curve.
      devices: train data-parallel on this many devices (or ``"all"``); each
        step's rows must split evenly over them. Default: one device.
      local_data: with several processes (``fnnet.distributed``), ``data`` holds
        only this process's rows, an equal share. Full-batch training only.

    Before the first step your model and loss are traced once on one batch
    (``fnnet.training.preflight``): an output whose shape is not ``y``'s (for
    ``"sse"``/``"mse"``, which would broadcast), labels that do not fit
    ``"cross_entropy"``, a loss that is not a float scalar, or an error in your
    code is one ``ConfigError`` line. A schedule is evaluated at every step (no
    negative rate). The run's record (``result.config``, metrics, checkpoints)
    holds the rate that ran and fingerprints of the optimizer and the loss
    (``fnnet.training.fingerprint``), so a resume refuses another one.

    Compiled programs are kept by the identity of your functions, as with
    ``jax.jit``: a global that ``apply`` or the loss reads is baked into the
    program the first time. Change it and call ``fit`` again with the same
    functions and the old program (and value) runs; pass the value as data or
    a parameter, or make new functions.

    Returns:
      A ``FitResult``.

    Raises:
      ConfigError: (a ``ValueError``) for an argument fnnet cannot use, in one line.
      DivergenceError: when a loss is not finite; training stops at that chunk.

    Examples:
      >>> result = fit("autograd", steps=20, sizes=(8, 20, 10, 2), seed=1)
      >>> result.losses.shape, bool(result.losses[-1] < result.losses[0])
      ((20,), True)
      >>> import fnnet, jax.numpy as jnp
      >>> line = fnnet.Model(lambda key: {"w": jnp.zeros((3, 1))}, lambda p, x: x @ p["w"])
      >>> x = np.random.default_rng(0).normal(size=(32, 3)); y = x @ np.array([[1.0], [-2.0], [0.5]])
      >>> mine = fit(line, data=(x, y), loss="mse", optimizer="sgd", lr=0.1, steps=200)
      >>> np.round(mine.params["w"].ravel(), 2).tolist()
      [1.0, -2.0, 0.5]
    """
    run = resolve(model, steps=steps, lr=lr, optimizer=optimizer, seed=seed, sizes=sizes, params=params, data=data,
                  loss=loss, batch_size=batch_size, log_every=log_every, dtype=dtype, checkpoint_dir=checkpoint_dir,
                  checkpoint_every=checkpoint_every, resume=resume, devices=devices, local_data=local_data)
    config, record = run.config, run.config.record()
    with Session(config, record) as runtime, contextlib.ExitStack() as stack:  # signals, processes, checkpoints
        lr_value = _lr_value(config)
        state = make_train(config.program()).init(run.params, _train_key(config), lr_value)
        hooks: list = [DivergenceGuard(config.lr)] + ([Callback(callback)] if callback is not None else [])
        state, losses_before = runtime.start_from(state)  # with resume: the newest good checkpoint
        state, data, sharding = runtime.place(state, run.data)
        if runtime.checkpointing:
            hooks.append(Checkpointing(runtime.checkpoints, record, config.checkpoint_every or config.log_every,
                                       stop=runtime.stop))
        if (sys.stderr.isatty() if progress is None else progress):
            hooks.insert(1, stack.enter_context(ProgressBar(config.name, config.steps, int(state.step))))
        outcome = run_loop(make_train(config.program(sharding)), state, data, lr_value, steps=config.steps,
                           log_every=config.log_every, hooks=hooks, losses=losses_before)
    return FitResult(config.name, outcome.state.params, outcome.losses, outcome.compile_seconds, outcome.run_seconds,
                     {**record, "steps": config.steps}, outcome.steps_run, outcome.stopped, config.model)


def _train_key(config: RunConfig):
    """The run's training key (every step folds its number into it); None for the NumPy lessons."""
    return None if config.backend == NUMPY else run_keys(config.seed).train


def _lr_value(config: RunConfig):
    """The learning rate as the compiled program takes it (a traced scalar), or None when the optimizer holds it."""
    if config.lr is None:
        return None
    return np.float64(config.lr) if config.backend == NUMPY else jnp.asarray(config.lr, config.dtype)
