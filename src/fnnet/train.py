"""The training loop: one step as a pure function, chunks of steps compiled whole.

``train_step`` maps a ``TrainState`` and a batch to the next state and the loss
before the update. ``run_chunk`` is ``lax.scan`` of that step over a chunk,
compiled once per (functions, chunk length, shapes). ``fit`` resolves a lesson
id into plain functions and drives the chunks from a host loop that shows
progress, checks the loss is finite and calls back; it never syncs per step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import numbers
import os
import sys
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

from fnnet.data import (Batch, Sizes, check_data, check_lr, check_memory, check_positive_int, check_sizes,  # noqa: F401
                        make_data, run_keys)  # check_memory moved to data.py (issue 14); kept importable here
from fnnet.errors import ConfigError, DivergenceError
from fnnet.lessons import LESSONS, get_lesson, lesson_functions, to_backend
from fnnet.optimizers import OPTIMIZERS

Params = Any  # a pytree of float arrays: the structure the lesson's init returns
OptState = optax.OptState
GradFn = Callable[[Params, Batch, "jax.Array | None"], tuple[Float[Array, ""], Params]]
MakeOptimizer = Callable[[Any], optax.GradientTransformation]

DEFAULT_STEPS = 500  # the tutorial's
DEFAULT_LOG_EVERY = 100
MAX_STEPS = 2**31 - 1


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next."""

    params: Params  # the lesson's parameter pytree; float32 (float64 NumPy for the numpy lesson)
    opt_state: OptState  # the optimizer's state for those params
    key: jax.Array | None  # the run's training key, shape () typed key; None for the numpy lesson
    step: Int[Array, ""]  # steps taken so far, int32 (a Python int for the numpy lesson)


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


def train_step(state: TrainState, batch: Batch, *, grad_fn: GradFn, optimizer: optax.GradientTransformation):
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
    Pure and jit-able. (``run_chunk`` computes the same rows but sorts only
    once per epoch.)

    Examples:
      >>> x = jnp.arange(6.0)[:, None]
      >>> rows = [minibatch((x, x), jax.random.key(0), t, 2)[0][:, 0].tolist() for t in range(3)]
      >>> sorted(sum(rows, []))  # one epoch sees every row once
      [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    rows = data[0].shape[0]
    return take_rows(data, epoch_order(key, step // (rows // batch_size), rows), step, batch_size)


@functools.partial(jax.jit, static_argnames=("grad_fn", "make_optimizer", "length", "batch_size", "batch_sharding"))
def run_chunk(state: TrainState, batch: Batch, lr, *, grad_fn: GradFn, make_optimizer: MakeOptimizer, length: int,
              batch_size: int | None = None, batch_sharding=None):
    """``length`` training steps as one ``lax.scan``; returns ``(state, losses[length])``.

    The optimizer is built inside from ``lr`` (a traced scalar), so a new
    learning rate does not recompile. With ``batch_size``, ``batch`` is the
    whole data set and each step trains on its ``minibatch``. With
    ``batch_sharding`` (a ``NamedSharding`` over a device mesh) each step's rows
    are split across the devices; see ``data_parallel``.
    """
    optimizer = make_optimizer(lr)

    def step(state, rows):
        if batch_sharding is not None:  # data parallel: each device takes its share of the step's rows
            rows = jax.lax.with_sharding_constraint(rows, batch_sharding)
        return train_step(state, rows, grad_fn=grad_fn, optimizer=optimizer)

    if batch_size is None:
        return jax.lax.scan(lambda state, _: step(state, batch), state, None, length=length)

    rows = batch[0].shape[0]
    per_epoch = rows // batch_size

    def body(carry, _):  # the epoch's order rides along in the carry: one sort per epoch, not per step
        state, order = carry
        order = jax.lax.cond(state.step % per_epoch == 0,
                             lambda: epoch_order(state.key, state.step // per_epoch, rows), lambda: order)
        state, loss = step(state, take_rows(batch, order, state.step, batch_size))
        return (state, order), loss

    first = epoch_order(state.key, state.step // per_epoch, rows)
    (state, _), losses = jax.lax.scan(body, (state, first), None, length=length)
    return state, losses


def run_chunk_numpy(state: TrainState, batch: Batch, lr, *, grad_fn: GradFn, make_optimizer: MakeOptimizer, length: int,
                    batch_size: int | None = None, batch_sharding=None):
    """The same contract as ``run_chunk`` as a Python loop, for the NumPy lesson (full batch, one device)."""
    del batch_size, batch_sharding
    optimizer = make_optimizer(lr)
    losses = np.empty(length)
    for i in range(length):
        state, losses[i] = train_step(state, batch, grad_fn=grad_fn, optimizer=optimizer)
    return state, losses


def train_from(params: Params, batch: Batch, key: jax.Array, lr, *, grad_fn: GradFn, make_optimizer: MakeOptimizer, steps: int):
    """A whole run as one pure function of its start: ``(params, losses[steps])``.

    Starts from ``params`` on ``batch`` with training key ``key`` (step t uses
    ``fold_in(key, t)``), as ``fit`` does, and scans ``steps`` steps. Pure and
    shape-static, so ``jax.jit(jax.vmap(train_from))`` trains many runs at once.
    """
    state = TrainState(params, make_optimizer(lr).init(params), key, jnp.asarray(0, jnp.int32))
    state, losses = run_chunk(state, batch, lr, grad_fn=grad_fn, make_optimizer=make_optimizer, length=steps)
    return state.params, losses


_COMPILED: dict = {}


def _signature(tree):
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(x), jnp.result_type(x), getattr(x, "weak_type", False),
                           getattr(x, "sharding", None)) for x in leaves)


def compile_cached(jitted, *args, **statics):
    """Compile ``jitted(*args, **statics)`` ahead of time, once; return ``(executable, seconds)``.

    The executable is cached by function, static arguments, device and the
    shapes and dtypes of ``args``, so a second run of the same configuration
    compiles nothing (0.0 seconds). Call the executable with ``*args`` only.
    """
    leaf = jax.tree.leaves(args)[0]
    device = next(iter(leaf.devices())) if hasattr(leaf, "devices") else None
    cache_key = (jitted, tuple(sorted(statics.items())), device, _signature(args))
    if cache_key in _COMPILED:
        return _COMPILED[cache_key], 0.0
    start = time.perf_counter()
    compiled = jitted.lower(*args, **statics).compile()
    _COMPILED[cache_key] = compiled
    return compiled, time.perf_counter() - start


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> str | None:
    """Keep compiled programs on disk so the next process skips compiling them.

    Uses JAX's persistent compilation cache in ``directory`` (default
    ``$FNNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/fnnet/jax`` or
    ``~/.cache/fnnet/jax``). Returns the directory, or None when it cannot be
    created (then nothing changes). The ``fnnet`` command calls this unless
    given ``--no-compile-cache``.
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
    return str(directory)


class Progress(NamedTuple):
    """What ``fit`` hands its callback after each chunk."""

    step: int  # steps done so far
    steps: int  # steps in the run
    losses: np.ndarray  # the losses of the chunk just run
    params: Params  # parameters after ``step`` steps


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The outcome of ``fit``.

    Attributes:
      lesson: the lesson id.
      params: the trained parameters (the structure the lesson's init returns).
      losses: one loss per step, before that step's update (NumPy array).
      compile_seconds: time spent compiling (0.0 when everything was cached).
      run_seconds: time spent running the steps, compile excluded.
      config: lesson, steps, lr, optimizer, seed and sizes of the run.
    """

    lesson: str
    params: Params
    losses: np.ndarray
    compile_seconds: float
    run_seconds: float
    config: dict

    @property
    def steps_per_second(self) -> float:
        ran = len(self.losses) - self.config.get("resumed_from", 0)  # steps this call ran, restored ones excluded
        return ran / self.run_seconds if self.run_seconds > 0 else float("inf")


def resolve_device(platform: str) -> jax.Device:
    """The first device of ``platform`` (``cpu``, ``gpu`` or ``tpu``); ConfigError if there is none.

    Examples:
      >>> resolve_device("cpu").platform
      'cpu'
    """
    if platform not in ("cpu", "gpu", "tpu"):
        raise ConfigError(f"device must be one of cpu, gpu, tpu; got {platform!r}")
    try:
        return jax.devices(platform)[0]
    except RuntimeError:
        found = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise ConfigError(f"no {platform} device is available here (JAX sees: {found})") from None


@functools.lru_cache(maxsize=None)
def _fixed_optimizer(transformation: optax.GradientTransformation) -> MakeOptimizer:
    def make(lr):
        del lr
        return transformation

    return make


def _check_optimizer(optimizer, lesson, lr):
    """Return (make_optimizer, name for the record)."""
    if isinstance(optimizer, optax.GradientTransformation):
        if lesson.backend == "numpy":
            raise ConfigError("lesson 'numpy' runs in NumPy and takes only its hand-written SGD")
        if lr is not None:
            raise ConfigError("give lr inside the optax optimizer or as lr=, not both")
        return _fixed_optimizer(optimizer), type(optimizer).__name__
    name = lesson.optimizer if optimizer is None else optimizer
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)} or an optax.GradientTransformation"
        )
    if lesson.backend == "numpy":
        if name not in ("sgd", "sgd-by-hand"):
            raise ConfigError(f"lesson 'numpy' runs in NumPy and takes only sgd (by hand), not {name!r}")
        name = "sgd-by-hand"
    return OPTIMIZERS[name], name


def _check_params(params, expected, lesson_id):
    """``params`` as NumPy arrays in the structure of ``expected`` (ShapeDtypeStructs), or ConfigError."""
    got_def, exp_def = jax.tree.structure(params), jax.tree.structure(expected)
    if got_def != exp_def:
        names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(expected)[0]]
        raise ConfigError(
            f"params do not match lesson {lesson_id!r}: expected a tree with leaves {', '.join(names)}"
        )
    checked = []
    for (path, want), got in zip(jax.tree_util.tree_flatten_with_path(expected)[0], jax.tree.leaves(params)):
        shape = np.shape(got)
        if shape != want.shape:
            raise ConfigError(
                f"params{jax.tree_util.keystr(path)} has shape {shape}; lesson {lesson_id!r} expects {want.shape}"
            )
        arr = np.asarray(got)
        if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
            raise ConfigError(f"params{jax.tree_util.keystr(path)} must be finite floats, got dtype {arr.dtype}")
        checked.append(arr)
    return jax.tree.unflatten(exp_def, checked)


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, label: str, completed: int = 0):
    """A rich progress bar on stderr, or a no-op updater when disabled."""
    if not enabled:
        yield lambda advance, loss: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total, completed=completed, loss="…")
        yield lambda advance, loss: bar.update(task, advance=advance, loss=f"{loss:.4g}")


def run_chunks(
    state: TrainState, batch: Batch, lr, *, grad_fn: GradFn, make_optimizer: MakeOptimizer, steps: int,
    log_every: int, numpy_backend: bool = False, label: str = "train", show_progress: bool = False,
    callback: Callable[[Progress], None] | None = None, losses: np.ndarray | None = None,
    checkpoint_every: int | None = None, on_checkpoint: Callable[[TrainState, np.ndarray], None] | None = None,
    batch_size: int | None = None, batch_sharding=None, stop=None,
):
    """The host loop: from ``state.step`` to ``steps`` in chunks; returns ``(state, losses, compile_s, run_s)``.

    Chunks end at every multiple of ``log_every`` (and of ``checkpoint_every``).
    Between chunks it reads the chunk's losses (the only host sync), stops with
    ``DivergenceError`` at the first non-finite one, advances the progress bar,
    calls ``callback`` and, at checkpoint boundaries and at the end,
    ``on_checkpoint(state, losses_so_far)``. ``losses`` are those of the steps
    before ``state.step`` (a resumed run), returned in front of the new ones.
    ``stop`` (a ``fnnet.signals.StopRequest``): after Ctrl-C or SIGTERM, save at
    the step reached and raise ``stop.interrupted(step)``.
    """
    curve: list[np.ndarray] = [] if losses is None else [np.asarray(losses)]
    compile_seconds = run_seconds = 0.0
    done = int(state.step)
    every = [log_every] + ([checkpoint_every] if checkpoint_every else [])
    with _progress_bar(show_progress, steps, label, done) as advance:
        while done < steps:
            length = min([k - done % k for k in every] + [steps - done])
            statics = dict(grad_fn=grad_fn, make_optimizer=make_optimizer, length=length, batch_size=batch_size,
                           batch_sharding=batch_sharding)
            if numpy_backend:
                runner = functools.partial(run_chunk_numpy, **statics)
            else:
                runner, seconds = compile_cached(run_chunk, state, batch, lr, **statics)
                compile_seconds += seconds
            start = time.perf_counter()
            state, chunk = runner(state, batch, lr)
            chunk = host_value(chunk)  # the one host sync of the chunk
            run_seconds += time.perf_counter() - start
            curve.append(chunk)
            finite = np.isfinite(chunk)
            if not finite.all():
                bad = int(np.argmin(finite))
                raise DivergenceError(done + bad, chunk[bad], float(lr), np.concatenate(curve)[: done + bad + 1])
            done += length
            advance(length, float(chunk[-1]))
            if callback is not None:
                callback(Progress(done, steps, chunk, state.params))
            stopping = stop is not None and stop.requested is not None and done < steps  # Ctrl-C/SIGTERM
            if on_checkpoint is not None and (done % checkpoint_every == 0 or done == steps or stopping):
                on_checkpoint(state, np.concatenate(curve))
            if stopping:
                raise stop.interrupted(done)
    start = time.perf_counter()
    state = jax.block_until_ready(state)
    run_seconds += time.perf_counter() - start
    return state, np.concatenate(curve), compile_seconds, run_seconds


def host_value(array) -> np.ndarray:
    """An array's value on this process (a replicated global array is read from a local copy)."""
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    return np.asarray(array.addressable_data(0))


def resolve_devices(devices) -> list:
    """The devices a run uses: ``None`` or 1 -> the default device; N -> the first N; ``"all"`` -> every one.

    When several processes have joined (``fnnet.distributed``), a run always
    uses every device of every process.
    """
    available = jax.devices()
    if jax.process_count() > 1:
        return available
    if devices is None:
        return available[:1]
    if devices == "all":
        return available
    n = check_positive_int("devices", devices)
    if n > len(available):
        raise ConfigError(f"asked for {n} devices but JAX sees {len(available)} "
                          f"({', '.join(sorted({d.platform for d in available}))})")
    return available[:n]


def data_parallel(devices: list, state: TrainState, batch: Batch, minibatches: bool, local_data: bool = False):
    """Place a run on ``devices`` for data-parallel training; returns ``(state, batch, batch_sharding)``.

    A one-axis ``Mesh`` ("data") over the devices: parameters and optimizer
    state replicated, each step's rows split along the axis. ``jit`` with
    these shardings (GSPMD) was chosen over ``shard_map`` + ``pmean``: the
    training step stays the single-device code, and XLA inserts the all-reduce
    of the gradients (a sum over the sharded batch axis) where the matmuls
    contract over it. With minibatches the data set is kept whole on every
    device and each step's gathered rows are split; without, the rows are
    split once, up front. With several processes and ``local_data`` each
    process supplies only its own rows.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec("data"))
    if jax.process_count() > 1:  # several processes: each supplies the shards its own devices hold
        from fnnet.distributed import to_global

        state = to_global(state, replicated)
        if local_data:  # this process holds only its rows: they become its devices' shards of the data
            batch = tuple(jax.make_array_from_process_local_data(split, np.asarray(a)) for a in batch)
            return state, batch, None
        return state, to_global(tuple(batch), replicated if minibatches else split), split if minibatches else None
    state = jax.device_put(state, replicated)
    batch = jax.device_put(tuple(batch), replicated if minibatches else split)
    return state, batch, split if minibatches else None


def fit(
    lesson_id: str,
    *,
    steps: int | None = None,
    lr: float | None = None,
    optimizer: str | optax.GradientTransformation | None = None,
    seed: int = 0,
    sizes: Sizes | tuple | None = None,
    params: Params | None = None,
    data: tuple | None = None,
    log_every: int | None = None,
    callback: Callable[[Progress], None] | None = None,
    progress: bool | None = None,
    dtype: str = "float32",
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    batch_size: int | None = None,
    devices: int | str | None = None,
    local_data: bool = False,
) -> FitResult:
    """Train one lesson and return its parameters and loss curve.

    Every argument left as ``None`` takes the lesson's seed default (500 steps,
    the tutorial's learning rate and optimizer, sizes 64/1000/100/10). The same
    ``seed`` gives the same data, initial weights and losses, bit for bit.

    Args:
      lesson_id: a key of ``fnnet.LESSONS``.
      steps: number of training steps.
      lr: learning rate (finite, > 0).
      optimizer: ``"sgd"``, ``"momentum"``, ``"adam"``, ``"sgd-by-hand"``, or an
        ``optax.GradientTransformation`` (then leave ``lr`` as None).
      seed: seeds the data, the initial weights and the per-step keys.
      sizes: ``Sizes(batch, d_in, hidden, d_out)``; read from ``data`` if omitted.
      params: start from these weights (the structure ``init`` returns) instead
        of drawing them.
      data: ``(x, y)`` with shapes (N, D_in) and (N, D_out), to train on instead
        of random data.
      log_every: steps per compiled chunk; progress, the finiteness check and
        ``callback`` happen between chunks (default 100).
      callback: called with a ``Progress`` after every chunk.
      progress: show a progress bar on stderr; default: when stderr is a terminal.
      dtype: ``"float32"`` (the tutorial's) or ``"float64"`` for the JAX lessons;
        float64 needs ``jax.enable_x64``. The numpy lesson is always float64.
      checkpoint_dir: save checkpoints (orbax) in this folder, which must be
        empty or missing unless ``resume``.
      checkpoint_every: steps between checkpoints (default ``log_every``); one
        is also saved at the end.
      batch_size: train on minibatches of this many rows of the data, reshuffled
        every epoch inside the compiled loop (default: the whole data every step).
      local_data: with several processes (``fnnet.distributed``), ``data`` holds
        only this process's rows, an equal share; the data set is their
        concatenation in process order. Full-batch training only.
      devices: train data-parallel on this many devices (or ``"all"``); each
        step's rows must split evenly over them. Default: one device.
      resume: continue from the newest good checkpoint in ``checkpoint_dir``;
        the run then ends exactly where an uninterrupted one would, and
        ``losses`` holds the whole curve.

    Returns:
      A ``FitResult``.

    Raises:
      ConfigError: (a ``ValueError``) for an argument fnnet cannot use.
      DivergenceError: when a loss is not finite; training stops at that chunk.

    Examples:
      >>> result = fit("autograd", steps=20, sizes=(8, 20, 10, 2), seed=1)
      >>> result.losses.shape, bool(result.losses[-1] < result.losses[0])
      ((20,), True)
    """
    lesson = get_lesson(lesson_id)
    steps = DEFAULT_STEPS if steps is None else check_positive_int("steps", steps)
    make_optimizer, optimizer_name = _check_optimizer(optimizer, lesson, lr)
    if not isinstance(optimizer, optax.GradientTransformation):
        lr = check_lr(lesson.lr if lr is None else lr)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    log_every = min(steps, DEFAULT_LOG_EVERY if log_every is None else check_positive_int("log_every", log_every))
    if callback is not None and not callable(callback):
        raise ConfigError(f"callback must be callable, got {type(callback).__name__}")
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ConfigError("dtype='float64' needs 64-bit JAX: run inside `with jax.enable_x64(True):`")
    if steps > MAX_STEPS:
        raise ConfigError(f"steps must be at most {MAX_STEPS} (the step counter is int32), got {steps}")
    sizes = None if sizes is None else check_sizes(sizes)
    if sizes is not None:
        check_memory(sizes)
    keys = run_keys(seed)
    if data is not None and local_data:
        batch, local = check_data(data, None, (sizes or Sizes()).hidden)
        found = local._replace(batch=local.batch * jax.process_count())
        if sizes is not None and sizes != found:
            raise ConfigError(f"this process's data ({local.batch} of {found.batch} rows, x{tuple(np.shape(data[0]))}) "
                              f"does not match sizes {tuple(sizes)}")
        if batch_size is not None:
            raise ConfigError("local_data is for full-batch training; leave batch_size unset")
        sizes = found
    elif data is not None:
        batch, sizes = check_data(data, sizes, Sizes().hidden)
    else:
        sizes = sizes or Sizes()
        batch = make_data(sizes, key=keys.data)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
        if batch_size > sizes.batch:
            raise ConfigError(f"batch_size {batch_size} is larger than the data ({sizes.batch} rows)")
        if lesson.backend == "numpy":
            raise ConfigError("lesson 'numpy' trains on the whole data every step; batch_size needs a JAX lesson")
        if batch_size == sizes.batch:
            batch_size = None  # every step sees all rows: no shuffling needed

    fns = lesson_functions(lesson.id, sizes)
    given_params = params is not None
    if params is None:
        params = fns.init(keys.init)
    else:
        params = _check_params(params, jax.eval_shape(fns.model.init, keys.init), lesson.id)
    numpy_backend = lesson.backend == "numpy"
    params, batch = to_backend(params, lesson.backend, dtype), to_backend(tuple(batch), lesson.backend, dtype)
    lr_value = np.float64(lr) if numpy_backend else jnp.asarray(float("nan") if lr is None else lr, dtype)
    state = TrainState(
        params=params,
        opt_state=make_optimizer(lr_value).init(params),
        key=None if numpy_backend else keys.train,
        step=0 if numpy_backend else jnp.asarray(0, jnp.int32),
    )

    config = dict(
        lesson=lesson.id, lr=lr, optimizer=optimizer_name, seed=int(seed), sizes=sizes._asdict(),
        backend=lesson.backend, dtype="float64" if numpy_backend else dtype,
        data=_fingerprint(batch) if data is not None else "random",
        start=_fingerprint(params) if given_params else "drawn", batch_size=batch_size,
    )
    run_devices = resolve_devices(devices)
    if len(run_devices) > 1 and numpy_backend:
        raise ConfigError("lesson 'numpy' runs in NumPy on one device; devices needs a JAX lesson")
    if len(run_devices) > 1 and (batch_size or sizes.batch) % len(run_devices):
        raise ConfigError(f"the {batch_size or sizes.batch} rows of a step do not split evenly over "
                          f"{len(run_devices)} devices; choose a batch that is a multiple of {len(run_devices)}")
    if jax.process_count() > 1 and checkpoint_dir is not None:
        raise ConfigError("checkpoints are not supported yet when several processes train together")
    checkpoints = _open_checkpoints(checkpoint_dir, checkpoint_every, resume, log_every)
    try:
        losses_before = None
        if checkpoints is not None and resume:
            state, losses_before = checkpoints.restore(state, config)
            state = state._replace(params=to_backend(state.params, lesson.backend, dtype))
            if int(state.step) > steps:
                raise ConfigError(f"the newest checkpoint is at step {int(state.step)}, past steps={steps}")
        batch_sharding = None
        if len(run_devices) > 1:
            state, batch, batch_sharding = data_parallel(run_devices, state, batch, batch_size is not None, local_data)
        save = None
        if checkpoints is not None:
            save = lambda state, losses: checkpoints.save(state, losses, config)  # noqa: E731
        show = sys.stderr.isatty() if progress is None else bool(progress)
        state, losses, compile_seconds, run_seconds = run_chunks(
            state, batch, lr_value, grad_fn=fns.grad_fn, make_optimizer=make_optimizer, steps=steps,
            log_every=log_every, numpy_backend=numpy_backend, label=lesson.id, show_progress=show,
            callback=callback, losses=losses_before, checkpoint_every=checkpoint_every or log_every,
            on_checkpoint=save, batch_size=batch_size, batch_sharding=batch_sharding,
            stop=checkpoints.watch_signals() if checkpoints is not None else None,  # save, then stop, on a signal
        )
    finally:
        if checkpoints is not None:
            checkpoints.close()  # waits for saves in flight, also when training stopped with an error
    config["steps"] = steps
    config["resumed_from"] = 0 if losses_before is None else len(losses_before)
    return FitResult(lesson.id, state.params, losses, compile_seconds, run_seconds, config)


def _fingerprint(tree) -> str:
    """A short SHA-256 of a tree's arrays: tells one run's given data or start from another's."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(str((a.shape, a.dtype.str)).encode() + a.tobytes())
    return "sha256:" + h.hexdigest()[:16]


def _open_checkpoints(directory, every, resume: bool, log_every: int):
    """Check the checkpoint arguments and open the folder (None without one); no folder is made on an error."""
    if directory is None:
        if resume:
            raise ConfigError("resume needs a checkpoint folder (--checkpoint-dir)")
        if every is not None:
            raise ConfigError("checkpoint_every needs a checkpoint folder (--checkpoint-dir)")
        return None
    if every is not None:
        check_positive_int("checkpoint_every", every)
    from fnnet.checkpoint import Checkpoints

    return Checkpoints.open(directory, resume=resume)  # checks the folder, locks it, clears unfinished saves


__all__ = [
    "LESSONS", "TrainState", "FitResult", "Progress", "fit", "train_step", "run_chunk",
    "step_key", "step_keys", "resolve_device", "compile_cached", "enable_compilation_cache", "train_from",
]
