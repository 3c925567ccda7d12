"""The pure training core: a step, a chunk of steps under ``lax.scan``, a whole run.

``make_train(program)`` turns a ``Program`` (model, gradient rule, loss,
optimizer, minibatch size: everything that decides the compiled code, and
nothing else) into a ``Train`` of pure functions: ``init`` builds the
``TrainState``, ``chunk`` runs ``length`` steps as one ``lax.scan``, ``run`` is a
whole run as one function of its start (what ``jit(vmap(run))`` sweeps). The
step never prints and never syncs with the host; the host loop (``fnnet.loop``)
does that between chunks.

Invariants: the loss reported for a step is the loss *before* its update; step
``t`` uses the key ``fold_in(key, t)`` and, with minibatches, the rows of
``minibatch(data, key, t, batch_size)``, so how a run is cut into chunks never
changes a bit of the result.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from fnnet.lessons import NUMPY
from fnnet.lessons.functional import grad_function  # noqa: F401 (re-exported: it lived here before)

Params = Any  # a pytree of float arrays: the structure the model's init returns
OptState = Any  # the optimizer's state for those params (an optax state pytree)
Batch = tuple  # (x, y): x (rows, d_in) float; y (rows, d_out) float, or (rows,) integer labels
GradFn = Callable[[Params, Batch, "jax.Array | None"], tuple[Float[Array, ""], Params]]


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next."""

    params: Params  # the model's parameter pytree; float32 (float64 NumPy for the numpy lesson)
    opt_state: OptState  # the optimizer's state for those params
    key: jax.Array | None  # the run's training key, a () typed key; None for the numpy lesson
    step: Int[Array, ""]  # steps taken so far, int32 (a Python int for the numpy lesson)


class Program(NamedTuple):
    """What decides the compiled training code. Hashable: equal programs share one compiled loop.

    Attributes:
      model: has ``apply(params, x, key)`` (and ``init(key)``); a ``TwoLayer``,
        an ``NnxModel`` or your ``fnnet.Model``.
      gradient: ``"jax.grad"``, or ``"by hand"`` for the tutorial's hand-written
        backward (the model's ``manual_grads(params, x, y)``; sum-of-squares loss only).
      loss: ``loss(y_pred, y) -> scalar``.
      optimizer: ``lr -> optax.GradientTransformation``; called inside the
        compiled code with the traced learning rate (or None when the
        optimizer carries its own rate).
      batch_size: rows per step, reshuffled every epoch; None: every row, every step.
      batch_sharding: a ``NamedSharding`` splitting each step's rows over devices, or None.
      backend: ``"jax"`` (compiled) or ``"numpy"`` (a Python loop in float64).
    """

    model: Any
    gradient: str
    loss: Callable
    optimizer: Callable
    batch_size: int | None = None
    batch_sharding: Any = None
    backend: str = "jax"


def step_key(key: jax.Array, step) -> jax.Array:
    """The key of training step ``step``: ``fold_in(key, step)``.

    Folding the step in (instead of splitting a carried key) lets anyone compute
    the key of any step directly, e.g. to replay DynamicNet's depth schedule.

    Examples:
      >>> k = jax.random.key(0)
      >>> bool((jax.random.key_data(step_key(k, 0)) != jax.random.key_data(step_key(k, 1))).any())
      True
    """
    return jax.random.fold_in(key, step)


def step_keys(key: jax.Array, steps: int) -> jax.Array:
    """The keys of steps ``0 .. steps-1``, stacked.

    Examples:
      >>> step_keys(jax.random.key(0), 5).shape
      (5,)
    """
    return jax.vmap(step_key, in_axes=(None, 0))(key, jnp.arange(steps))


def train_step(state: TrainState, batch: Batch, *, grad_fn: GradFn, optimizer):
    """One step: gradient of the loss at ``state.params``, then the optimizer's update.

    Returns ``(next_state, loss)`` where ``loss`` is the loss *before* the update,
    as the tutorial prints it. Pure; jit-able; also runs eagerly on NumPy arrays.
    """
    key = None if state.key is None else step_key(state.key, state.step)
    loss, grads = grad_fn(state.params, batch, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p + u, state.params, updates)
    return TrainState(params, opt_state, state.key, state.step + 1), loss


SHUFFLE_STREAM = 2**31 - 1  # fold_in(key, SHUFFLE_STREAM) keys the shuffles; never a step index


def epoch_order(key: jax.Array, epoch, rows: int) -> jax.Array:
    """The order of the rows in epoch ``epoch``: a permutation keyed ``fold_in(fold_in(key, SHUFFLE_STREAM), epoch)``."""
    return jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, SHUFFLE_STREAM), epoch), rows)


def take_rows(data: Batch, order: jax.Array, step, batch_size: int) -> Batch:
    """Step ``step``'s slice of an epoch's ``order`` (rows left over at the end of an epoch are skipped)."""
    per_epoch = data[0].shape[0] // batch_size
    index = jax.lax.dynamic_slice_in_dim(order, (step % per_epoch) * batch_size, batch_size)
    return tuple(jnp.take(a, index, axis=0) for a in data)


def minibatch(data: Batch, key: jax.Array, step, batch_size: int) -> Batch:
    """The rows step ``step`` trains on: a fresh shuffle of the data every epoch.

    Epoch ``e = step // (rows // batch_size)`` orders the rows by
    ``epoch_order(key, e, rows)``; the step takes its slice of that order.
    Pure and jit-able. (``Train.chunk`` computes the same rows but sorts only
    once per epoch.)

    Examples:
      >>> x = jnp.arange(6.0)[:, None]
      >>> rows = [minibatch((x, x), jax.random.key(0), t, 2)[0][:, 0].tolist() for t in range(3)]
      >>> sorted(sum(rows, []))  # one epoch sees every row once
      [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    rows = data[0].shape[0]
    return take_rows(data, epoch_order(key, step // (rows // batch_size), rows), step, batch_size)


class Train:
    """A ``Program`` as pure functions; get one with ``make_train(program)``.

    * ``init(params, key, lr) -> TrainState`` (step 0).
    * ``chunk(state, data, lr, length) -> (state, losses[length])``: ``length``
      steps as one ``lax.scan`` (jitted; ``length`` static).
    * ``run(params, data, key, lr, steps) -> (params, losses[steps])``: a whole
      run, pure and shape-static, so ``jax.jit(jax.vmap(...))`` trains many at once.
    * ``compiled(length, state, data, lr) -> (executable, seconds)``: ``chunk``
      compiled ahead of time, once per length and argument shapes; seconds is 0.0
      when it was compiled before.

    Examples:
      >>> import optax
      >>> from fnnet.lessons.functional import TwoLayer, sum_squared_error
      >>> from fnnet.data import Sizes
      >>> model = TwoLayer(Sizes(8, 5, 4, 2))
      >>> train = make_train(Program(model, "jax.grad", sum_squared_error, optax.sgd))
      >>> data = (jnp.ones((8, 5)), jnp.zeros((8, 2)))
      >>> state = train.init(model.init(jax.random.key(0)), jax.random.key(1), 1e-3)
      >>> state, losses = train.chunk(state, data, 1e-3, length=10)
      >>> losses.shape, int(state.step), bool(losses[-1] < losses[0])
      ((10,), 10, True)
      >>> make_train(Program(model, "jax.grad", sum_squared_error, optax.sgd)) is train
      True
    """

    def __init__(self, program: Program):
        self.program = program
        self.grad_fn = grad_function(program.model, program.gradient, program.loss)
        self.numpy = program.backend == NUMPY
        self._chunk = self._numpy_chunk if self.numpy else jax.jit(self.run_chunk, static_argnames="length")
        self._executables: dict = {}

    def init(self, params: Params, key: jax.Array | None, lr) -> TrainState:
        opt_state = self.program.optimizer(lr).init(params)
        if self.numpy:
            return TrainState(params, opt_state, None, 0)
        return TrainState(params, opt_state, key, jnp.asarray(0, jnp.int32))

    def chunk(self, state: TrainState, data: Batch, lr, length: int):
        return self._chunk(state, data, lr, length=length)

    def run(self, params: Params, data: Batch, key: jax.Array, lr, steps: int):
        state, losses = self.run_chunk(self.init(params, key, lr), data, lr, length=steps)
        return state.params, losses

    def compiled(self, length: int, state: TrainState, data: Batch, lr):
        if self.numpy:
            return functools.partial(self._numpy_chunk, length=length), 0.0
        leaf = jax.tree.leaves(data)[0]
        device = next(iter(leaf.devices())) if hasattr(leaf, "devices") else None
        cache_key = (length, device, _signature((state, data, lr)))
        if cache_key in self._executables:
            return self._executables[cache_key], 0.0
        start = time.perf_counter()
        executable = self._chunk.lower(state, data, lr, length=length).compile()
        self._executables[cache_key] = executable
        return executable, time.perf_counter() - start

    def compiled_runs(self, steps: int, params, data, keys, lrs, *, shared_data: bool = False):
        """``jit(vmap(run))`` over stacked starts, keys and learning rates, compiled once per shapes.

        Returns ``(executable, seconds)``; call the executable with
        ``(params, data, keys, lrs)``. With ``shared_data`` every run trains on
        the same (unstacked) data.
        """
        args = (params, data, keys, lrs)
        cache_key = ("runs", steps, shared_data, _signature(args))
        if cache_key in self._executables:
            return self._executables[cache_key], 0.0
        start = time.perf_counter()
        runs = jax.vmap(functools.partial(self.run, steps=steps), in_axes=(0, None if shared_data else 0, 0, 0))
        executable = jax.jit(runs).lower(*args).compile()
        self._executables[cache_key] = executable
        return executable, time.perf_counter() - start

    def _step(self, optimizer, state, rows):
        if self.program.batch_sharding is not None:  # data parallel: each device takes its share of the rows
            rows = jax.lax.with_sharding_constraint(rows, self.program.batch_sharding)
        return train_step(state, rows, grad_fn=self.grad_fn, optimizer=optimizer)

    def run_chunk(self, state: TrainState, data: Batch, lr, *, length: int):
        optimizer = self.program.optimizer(lr)  # built from the traced lr: a new rate does not recompile
        batch_size = self.program.batch_size
        if batch_size is None:
            return jax.lax.scan(lambda s, _: self._step(optimizer, s, data), state, None, length=length)
        rows = data[0].shape[0]
        per_epoch = rows // batch_size

        def body(carry, _):  # the epoch's order rides along in the carry: one sort per epoch, not per step
            state, order = carry
            order = jax.lax.cond(state.step % per_epoch == 0,
                                 lambda: epoch_order(state.key, state.step // per_epoch, rows), lambda: order)
            state, loss = self._step(optimizer, state, take_rows(data, order, state.step, batch_size))
            return (state, order), loss

        first = epoch_order(state.key, state.step // per_epoch, rows)
        (state, _), losses = jax.lax.scan(body, (state, first), None, length=length)
        return state, losses

    def _numpy_chunk(self, state: TrainState, data: Batch, lr, *, length: int):
        """The same contract as ``chunk`` as a Python loop in NumPy (the numpy lesson: full batch, one device)."""
        optimizer = self.program.optimizer(lr)
        losses = np.empty(length)
        for i in range(length):
            state, losses[i] = train_step(state, data, grad_fn=self.grad_fn, optimizer=optimizer)
        return state, losses


@functools.lru_cache(maxsize=64)
def make_train(program: Program) -> Train:
    """The ``Train`` of ``program``: the one cache that keeps compiled training programs.

    Equal programs give the same ``Train`` (and so its compiled chunks), which
    is why a second ``fit`` of the same configuration compiles nothing.
    """
    return Train(program)


def _signature(tree):
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(x), jnp.result_type(x), getattr(x, "weak_type", False),
                           getattr(x, "sharding", None)) for x in leaves)


CACHE_MAX_BYTES = 256 * 2**20
"""Size of the compiled-program cache past which the least recently used entries are removed."""


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> str | None:
    """Keep compiled programs on disk so the next process skips compiling them.

    Uses JAX's persistent compilation cache in ``directory`` (default
    ``$FNNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/fnnet/jax`` or
    ``~/.cache/fnnet/jax``). Returns the directory, or None when it cannot be
    created (then nothing changes). The ``fnnet`` command calls this unless
    given ``--no-compile-cache``.

    Several processes may share the folder at once (the processes of one run
    on one host, two terminals, hosts with one home folder): every entry is
    read and written under a file lock, so no process reads another's entry
    half-written, and the folder is kept under ``CACHE_MAX_BYTES`` by
    removing the least recently used entries.
    """
    if directory is None:
        directory = os.environ.get("FNNET_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fnnet", "jax"
        )
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # A size limit is what makes JAX take its lock (filelock) around each read and write; without
    # one, a write is a plain write_bytes that another process can read half done. JAX refuses a
    # limit when filelock is missing (a dependency of fnnet, but an environment may lack it). A folder
    # this process cannot write (a shared, read-only cache) is read without the lock, which it could
    # not create there.
    if importlib.util.find_spec("filelock") is not None and os.access(directory, os.W_OK):
        jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    return str(directory)
