"""A run's configuration: resolved and checked in one place, frozen, and recorded from one place.

``resolve(model, ...)`` takes what ``fnnet.fit`` was given (a lesson id, a
``fnnet.Model`` or an ``nnx.Module``, and the keyword arguments), checks every
argument before anything is traced or written, fills in the defaults, and
returns a ``Run``: the frozen ``RunConfig``, the starting parameters and the
data, cast to the dtype the run computes in. ``prepare_data`` is the one rule
for user data, used by ``fit`` and by the command alike; ``RunConfig.record()``
is what results, metrics files and checkpoints store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import numbers
import sys
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from fnnet.training.core import Program
from fnnet.data import (Sizes, check_data, check_memory, check_positive_int, check_seed,
                        check_steps, make_data, run_keys)
from fnnet.errors import ConfigError
from fnnet.lessons.functional import LOSSES
from fnnet.model import Model
from fnnet.lessons import JAX, LESSONS, NUMPY, get_lesson
from fnnet.lessons.models import init_params, lesson_model, sizes_of, to_backend
from fnnet.training.fingerprint import (SCHEDULE_STEPS, UNREADABLE, loss_fingerprint, optax_rate,
                                        optimizer_fingerprint, schedule_values)
from fnnet.training.optimizers import Fixed, Scheduled, resolve_optimizer
from fnnet.training.preflight import check_model_and_loss
from fnnet.runtime.placement import resolve_devices
from fnnet.lessons.sine import ROWS, sine_data

DEFAULT_STEPS = 500  # the tutorial's
DEFAULT_LOG_EVERY = 100


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a run computes, checked. Build it with ``resolve``."""

    name: str  # the lesson id, or your model's name (its class or function name)
    lesson: str | None  # the lesson id; None for your own model
    model: Any  # hashable; init(key) -> params, apply(params, x, key) -> y_pred
    gradient: str  # "jax.grad" or "by hand"
    loss: Callable  # loss(y_pred, y) -> scalar
    loss_name: str
    optimizer: Callable  # lr -> optax.GradientTransformation
    optimizer_name: str
    lr: float | None  # None when a schedule or the optax transformation holds the rate
    steps: int
    seed: int
    sizes: Sizes | None  # a lesson's sizes; None for your own model
    rows: int  # rows of the whole data set (all processes)
    batch_size: int | None  # rows per step; None: every row, every step
    log_every: int
    dtype: str  # what the run computes in: "float32", or "float64" (the numpy lesson, or under x64)
    backend: str  # "jax" or "numpy"
    devices: tuple  # the devices of the run (one unless data parallel)
    local_data: bool  # each process holds only its rows
    checkpoint_dir: Any  # as given (a str or path); fnnet.checkpoint checks it
    checkpoint_every: int | None
    resume: bool
    data: str  # "random", or a fingerprint of the given data
    start: str  # "drawn", or a fingerprint of the given parameters

    def program(self, batch_sharding=None) -> Program:
        """The compiled code's description (``fnnet.core.Program``)."""
        return Program(self.model, self.gradient, self.loss, self.optimizer, self.batch_size, batch_sharding,
                       self.backend)

    def record(self) -> dict:
        """The run as a JSON-ready dict; a checkpoint stores it and refuses to resume under another.

        Examples:
          >>> run = resolve("nn", steps=20, sizes=(4, 6, 5, 2))
          >>> {k: run.config.record()[k] for k in ("lesson", "optimizer", "lr", "loss", "sizes")}
          {'lesson': 'nn', 'optimizer': 'sgd-by-hand', 'lr': 0.0001, 'loss': 'sse', 'sizes': {'batch': 4, 'd_in': 6, 'hidden': 5, 'd_out': 2}}
        """
        rate, schedule = self.rate()
        doc = dict(
            lesson=self.name, lr=rate, optimizer=self.optimizer_name, loss=self.loss_name, seed=self.seed,
            sizes=None if self.sizes is None else self.sizes._asdict(), rows=self.rows, backend=self.backend,
            dtype=self.dtype, data=self.data, start=self.start, batch_size=self.batch_size,
            fingerprint=self.fingerprints(),
        )
        if schedule is not None:  # the rate at a few steps; lr is its first value
            doc["schedule"] = {str(step): value for step, value in zip(SCHEDULE_STEPS, schedule_values(schedule))}
        return doc

    def rate(self):
        """``(the rate that runs, the schedule or None)``: a fixed rate, a schedule's first value, or the rate
        read inside an optax transformation; ``"unreadable"`` (never None) where it cannot be read."""
        if isinstance(self.optimizer, Scheduled):
            return float(schedule_values(self.optimizer.schedule)[0]), self.optimizer.schedule
        if isinstance(self.optimizer, Fixed):
            rate, schedule = optax_rate(self.optimizer.transformation)
            if schedule is not None:
                return float(schedule_values(schedule)[0]), schedule
            return (UNREADABLE if rate is None else rate), None
        return self.lr, None

    def fingerprints(self) -> dict:
        """What trained, as the same strings in every process and run (``fnnet.training.fingerprint``)."""
        if isinstance(self.optimizer, Fixed):
            optimizer = optimizer_fingerprint(self.optimizer.transformation)
        elif isinstance(self.optimizer, Scheduled):
            optimizer = optimizer_fingerprint(self.optimizer_name, self.optimizer.schedule)
        else:
            optimizer = optimizer_fingerprint(self.optimizer_name, self.lr)
        named = self.loss_name in LOSSES and LOSSES[self.loss_name] is self.loss
        return {"optimizer": optimizer, "loss": loss_fingerprint(self.loss_name if named else self.loss)}


class Run(NamedTuple):
    """A resolved run: its configuration, its starting parameters and its data, in the run's dtype."""

    config: RunConfig
    params: Any
    data: tuple


def resolve(model, *, steps=None, lr=None, optimizer=None, seed=0, sizes=None, params=None, data=None, loss=None,
            batch_size=None, log_every=None, dtype="float32", checkpoint_dir=None, checkpoint_every=None,
            resume=False, devices=None, local_data=False) -> Run:
    """Check everything ``fit`` was given and resolve the defaults; see ``fnnet.fit`` for the arguments.

    Raises:
      ConfigError: naming the first argument that cannot be used, in one line.

    Examples:
      >>> run = resolve("tensors", optimizer="adam", sizes=(8, 20, 10, 3))
      >>> run.config.optimizer_name, run.config.lr  # Adam's own default, not the lesson's SGD rate
      ('adam', 0.01)
    """
    lesson, own, start = _resolve_model(model, params)
    steps = (lesson.steps if lesson else DEFAULT_STEPS) if steps is None else check_steps(steps)
    seed = check_seed(seed)
    if log_every is None:
        log_every = lesson.print_every if lesson else DEFAULT_LOG_EVERY
    log_every = min(steps, check_positive_int("log_every", log_every))
    _check_dtype(dtype)
    _check_checkpoint_args(checkpoint_dir, checkpoint_every, resume)
    loss_fn, loss_name = _resolve_loss(loss, lesson)
    data_given, start_given = data is not None, start is not None
    own_loss = callable(loss) and not isinstance(loss, str)
    data, rows = _given_data(data, own, local_data, labels=loss_name == "cross_entropy", vector=own_loss)
    own, sizes, rows = _shaped_model(lesson, own, start, sizes, data, rows, steps)
    batch_size = _check_batch_size(batch_size, rows, lesson, local_data)
    check_schedule(lr, steps)
    if optimizer is not None and not isinstance(optimizer, str):  # a schedule inside your optax optimizer
        check_schedule(optax_rate(optimizer)[1], steps)
    factory, optimizer_name, lr = resolve_optimizer(
        optimizer, lr, family=lesson.family if lesson else "own", default=lesson.optimizer if lesson else "adam",
        default_lr=lesson.lr if lesson else None, numpy_backend=_in_numpy(lesson),
        dtype=_run_dtype(lesson, dtype), numpy_lesson=lesson.id if _in_numpy(lesson) else NUMPY)
    run_devices = _check_devices(devices, lesson, batch_size or rows)

    # every argument is checked: now draw what was not given
    data, start = _drawn(lesson, own, sizes, data, start, run_keys(int(seed)))
    backend = NUMPY if _in_numpy(lesson) else JAX
    params, data = to_backend(start, backend, dtype), to_backend(tuple(data), backend, dtype)
    if backend == JAX and (lesson is None or own_loss or loss_name != "sse"):  # your model or loss: traced on one batch
        check_model_and_loss(own, loss_fn, loss_name, params, data, batch_size or int(np.shape(data[0])[0]),
                             name=f"lesson {lesson.id!r}" if lesson else _model_name(model))
    config = RunConfig(
        name=lesson.id if lesson else _model_name(model), lesson=lesson.id if lesson else None, model=own,
        gradient=lesson.gradient if lesson else "jax.grad", loss=loss_fn, loss_name=loss_name, optimizer=factory,
        optimizer_name=optimizer_name, lr=lr, steps=steps, seed=int(seed), sizes=sizes if lesson else None,
        rows=rows, batch_size=batch_size, log_every=log_every, dtype=_run_dtype(lesson, dtype), backend=backend,
        devices=run_devices, local_data=bool(local_data), checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every, resume=bool(resume),
        data=fingerprint(data) if data_given else ("sin(x)" if lesson.edition == "sine" else "random"),
        start=fingerprint(start) if start_given else "drawn",
    )
    return Run(config, params, data)


def _in_numpy(lesson) -> bool:
    return lesson is not None and lesson.in_numpy


def _run_dtype(lesson, dtype: str) -> str:
    """What the run computes in: a NumPy lesson in float64 always, else the dtype asked for."""
    return "float64" if _in_numpy(lesson) else dtype


def check_schedule(lr, steps: int) -> None:
    """A learning-rate schedule (``step -> rate``), evaluated at every step of the run before the first: a negative
    or non-finite rate is refused in one line naming the first bad step (a negative rate is gradient ascent).

    Examples:
      >>> import optax
      >>> check_schedule(optax.linear_schedule(1e-3, 0.0, 100), 500)  # ends at 0: fine
      >>> check_schedule(optax.linear_schedule(1e-3, -1e-3, 100), 500)
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: the learning-rate schedule gives -2e-05 at step 51; expected a finite rate >= 0 at every step
    """
    if not callable(lr) or isinstance(lr, numbers.Real):
        return
    try:
        with jax.ensure_compile_time_eval():
            rates = np.asarray(jax.vmap(lr)(np.arange(steps)), np.float64)
    except Exception as err:  # the user's schedule failed: one line, its own words
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"the learning-rate schedule failed on steps 0..{steps - 1}: {first}") from err
    if rates.shape != (steps,):
        raise ConfigError(f"the learning-rate schedule returns shape {rates.shape[1:]} per step; expected a number")
    bad = ~np.isfinite(rates) | (rates < 0)
    if bad.any():
        step = int(np.argmax(bad))
        raise ConfigError(f"the learning-rate schedule gives {rates[step]:.3g} at step {step}; "
                          "expected a finite rate >= 0 at every step")


def _check_dtype(dtype) -> None:
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ConfigError("dtype='float64' needs 64-bit JAX: run inside `with jax.enable_x64(True):`")


def _given_data(data, own, local_data, *, labels: bool, vector: bool):
    """The user's data checked (or None), and its rows over all processes (None without data)."""
    if data is not None:
        data = prepare_data(data, labels=labels, vector=vector)
    elif own is not None:
        raise ConfigError("your own model needs data: fit(model, data=(x, y)) with x (rows, features)")
    elif local_data:
        raise ConfigError("local_data needs data: each process passes its own rows")
    rows = None if data is None else int(np.shape(data[0])[0]) * (jax.process_count() if local_data else 1)
    return data, rows


def _shaped_model(lesson, own, start, sizes, data, rows, steps):
    """``(model, sizes, rows)``: a lesson's model at its sizes (fixed for the sine edition), or your own as given."""
    if lesson is not None and lesson.edition == "sine":  # 2000 points (or the rows given), one column or three
        if sizes is not None:
            raise ConfigError(f"lesson {lesson.id!r} fits sin(x) on fixed data; sizes are for the classic edition")
        if data is not None:
            _check_sine_data(lesson.id, data)
        return lesson_model(lesson.id, None), sizes, rows or ROWS
    if lesson is not None:
        sizes = _lesson_sizes(lesson.id, sizes, data, start, rows)
        check_memory(sizes, steps=steps)
        return lesson_model(lesson.id, sizes), sizes, sizes.batch
    if sizes is not None:
        raise ConfigError("sizes are for the lessons; your model's sizes follow its weights and data")
    if start is None and getattr(own, "init", None) is None:
        raise ConfigError("your model has no init: give its starting weights as params=")
    return own, sizes, rows


def _check_batch_size(batch_size, rows: int, lesson, local_data) -> int | None:
    """Rows per step, checked; None when every step sees every row."""
    if batch_size is None:
        return None
    batch_size = check_positive_int("batch_size", batch_size)
    if batch_size > rows:
        raise ConfigError(f"batch_size {batch_size} is larger than the data ({rows} rows)")
    if _in_numpy(lesson):
        raise ConfigError(f"lesson {lesson.id!r} trains on the whole data every step; batch_size needs a JAX lesson")
    if local_data:
        raise ConfigError("local_data is for full-batch training; leave batch_size unset")
    return None if batch_size == rows else batch_size  # all rows each step: no shuffling needed


def _check_devices(devices, lesson, rows_per_step: int) -> tuple:
    run_devices = tuple(resolve_devices(devices))
    if len(run_devices) > 1 and _in_numpy(lesson):
        raise ConfigError(f"lesson {lesson.id!r} runs in NumPy on one device; devices needs a JAX lesson")
    if len(run_devices) > 1 and rows_per_step % len(run_devices):
        raise ConfigError(f"the {rows_per_step} rows of a step do not split evenly over "
                          f"{len(run_devices)} devices; choose a batch that is a multiple of {len(run_devices)}")
    return run_devices


def _drawn(lesson, own, sizes, data, start, keys):
    """``(data, start)``: what was given, checked against the model, and what was not, drawn from the run's keys."""
    if lesson is None:
        start = _check_params(_init_own(own, keys.init), None, "your model's init") if start is None else start
        return data, _check_params(start, None, "your model")
    if data is None:
        features = lesson.model == "nnx.Linear(3, 1)"
        data = sine_data(np.float64, features=features) if lesson.edition == "sine" else make_data(sizes, key=keys.data)
    if start is None:
        return data, init_params(own, keys.init)
    return data, _check_params(start, jax.eval_shape(own.init, keys.init), f"lesson {lesson.id!r}")


def _check_sine_data(lesson_id: str, data) -> None:
    """A sine lesson's model reads x (rows, 1), or the features (rows, 3) for a Linear(3, 1); y is (rows, 1)."""
    features = LESSONS[lesson_id].model == "nnx.Linear(3, 1)"
    want = 3 if features else 1
    x, y = data
    if np.ndim(y) != 2 or np.shape(x)[1] != want or np.shape(y)[1] != 1:
        what = "the features (x, x^2, x^3) as x (rows, 3)" if features else "x (rows, 1)"
        raise ConfigError(f"lesson {lesson_id!r} takes {what} and y (rows, 1); got x{tuple(np.shape(x))}, "
                          f"y{tuple(np.shape(y))}")


def prepare_data(data, *, labels: bool = False, vector: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Check user data ``(x, y)`` and return it as arrays (dtype kept): the one rule for ``fit`` and the command.

    ``x`` is (rows, features); ``y`` is (rows, outputs), or with ``labels``
    (the cross-entropy loss) it may be (rows,) integer class labels, and with
    ``vector`` (your own loss function) any (rows,) vector: integer labels for
    your own cross entropy or hinge loss, or real targets. Both real and
    finite, with the same number of rows.

    Examples:
      >>> x, y = prepare_data((np.ones((5, 3)), np.zeros((5, 2))))
      >>> x.shape, y.shape
      ((5, 3), (5, 2))
      >>> prepare_data((np.ones((5, 3)), np.arange(5)), labels=True)[1].shape
      (5,)
      >>> prepare_data((np.ones((5, 3)), np.arange(4)[:, None]))
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: data: x has 5 rows but y has 4; expected the same number
    """
    if (labels or vector) and isinstance(data, (tuple, list)) and len(data) == 2 and np.ndim(data[1]) == 1:
        y = np.asarray(data[1])
        if labels and not np.issubdtype(y.dtype, np.integer):
            raise ConfigError(f"data: labels y must be integers (class ids), got dtype {y.dtype}")
        (x, y2), _ = check_data((data[0], y[:, None]), None, 1)
        if labels and y.size and y.min() < 0:
            raise ConfigError(f"data: labels y must be class ids >= 0, got {int(y.min())}")
        return x, y2[:, 0]
    (x, y), _ = check_data(data, None, 1)
    return x, y


def fingerprint(tree) -> str:
    """A short SHA-256 of a tree's arrays: tells one run's given data or start from another's.

    Examples:
      >>> fingerprint({"w": np.zeros(3)}) == fingerprint({"w": np.zeros(3)}), fingerprint(np.ones(2))[:7]
      (True, 'sha256:')
    """
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(str((a.shape, a.dtype.str)).encode() + a.tobytes())
    return "sha256:" + h.hexdigest()[:16]


def _resolve_model(model, params):
    """``(lesson or None, own model or None, start params or None)``."""
    if isinstance(model, str):
        return get_lesson(model), None, params
    if "flax" in sys.modules:  # an nnx.Module can only exist once flax is imported
        from flax import nnx

        if isinstance(model, nnx.Module):
            from fnnet.lessons.modules import NnxModel

            own, start = NnxModel.of(model)
            if params is not None:
                start = _check_params(params, start, f"module {type(model).__name__}")
            return None, own, start
    if isinstance(model, Model):
        for part in ("init", "apply"):
            value = getattr(model, part)
            if not callable(value) and not (part == "init" and value is None):
                raise ConfigError(f"fnnet.Model({part}=...): {part} is not callable, got {type(value).__name__}; "
                                  f"expected a function{' (or None with params=)' if part == 'init' else ''}")
    if callable(getattr(model, "apply", None)) and hasattr(model, "init"):
        try:
            hash(model)
        except TypeError:
            raise ConfigError(f"your model {type(model).__name__} must be hashable (fnnet.Model(init, apply) is); "
                              "jit reuses its compiled loop by it") from None
        return None, model, params
    raise ConfigError(f"model must be a lesson id ({', '.join(LESSONS)}), a fnnet.Model(init, apply) or an "
                      f"nnx.Module, got {type(model).__name__}")


def _model_name(model) -> str:
    if isinstance(model, Model):
        return getattr(model.apply, "__name__", "model")
    return type(model).__name__


def _resolve_loss(loss, lesson):
    if loss is None:
        return LOSSES["sse"], "sse"
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ConfigError(f"unknown loss {loss!r}; expected one of: {', '.join(LOSSES)} or a function "
                              "loss(y_pred, y) -> scalar")
        if lesson is not None and lesson.gradient == "by hand" and loss != "sse":
            raise ConfigError(f"lesson {lesson.id!r} writes the backward of the sum-of-squares loss by hand; "
                              "its loss is 'sse'")
        return LOSSES[loss], loss
    if callable(loss):
        if lesson is not None and lesson.gradient == "by hand":
            raise ConfigError(f"lesson {lesson.id!r} writes the backward of the sum-of-squares loss by hand; "
                              "its loss is 'sse'")
        return loss, getattr(loss, "__qualname__", type(loss).__name__)
    raise ConfigError(f"loss must be one of {', '.join(LOSSES)} or a function loss(y_pred, y), got {loss!r}")


def _lesson_sizes(lesson_id: str, sizes, data, params, rows) -> Sizes:
    """A lesson's sizes: what was given, the data's shapes and the weights' shapes must agree; defaults fill the rest."""
    given = _given_sizes(sizes)
    found: list[tuple[str, dict]] = [("sizes", given)]
    if data is not None:
        x, y = data
        shapes = {"batch": rows, "d_in": np.shape(x)[1]}
        if np.ndim(y) == 2:  # class labels (rows,) say nothing of d_out
            shapes["d_out"] = np.shape(y)[1]
        found.append((f"the data (x{tuple(np.shape(x))}, y{tuple(np.shape(y))})", shapes))
    if params is not None:
        found.append(("params", sizes_of(lesson_id, params)))
    merged = dict(Sizes()._asdict())
    source = {}
    for label, values in found:
        for name, value in values.items():
            if name in source and merged[name] != value:
                raise ConfigError(f"{label} do not match {source[name]}: {name} is {value} there, "
                                  f"{merged[name]} in {source[name]}")
            merged[name], source[name] = int(value), label
    return Sizes(**merged)


def _given_sizes(sizes) -> dict:
    """Explicit sizes as a dict of the fields given: a Sizes, a 4-tuple, or a dict naming some fields."""
    if sizes is None:
        return {}
    if isinstance(sizes, dict):
        unknown = set(sizes) - set(Sizes._fields)
        if unknown:
            raise ConfigError(f"sizes: unknown field {sorted(unknown)[0]!r}; expected some of {', '.join(Sizes._fields)}")
        return {k: check_positive_int(f"sizes.{k}", v) for k, v in sizes.items() if v is not None}
    if isinstance(sizes, (tuple, list)) and not isinstance(sizes, Sizes) and len(sizes) != len(Sizes._fields):
        raise ConfigError(f"sizes must be Sizes(batch, d_in, hidden, d_out), a 4-tuple or a dict, got {sizes!r}")
    if not isinstance(sizes, (tuple, list)):
        raise ConfigError(f"sizes must be Sizes(batch, d_in, hidden, d_out), a 4-tuple or a dict, got {sizes!r}")
    return {k: check_positive_int(f"sizes.{k}", v) for k, v in zip(Sizes._fields, sizes)}


def _check_params(params, expected, what: str):
    """``params`` as NumPy arrays, in the structure of ``expected`` (a tree of arrays or ShapeDtypeStructs) if given."""
    if expected is not None:
        got_def, exp_def = jax.tree.structure(params), jax.tree.structure(expected)
        if got_def != exp_def:
            names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(expected)[0]]
            raise ConfigError(f"params do not match {what}: expected a tree with leaves {', '.join(names)}")
    checked = []
    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    wants = [None] * len(paths) if expected is None else jax.tree.leaves(expected)
    for (path, got), want in zip(paths, wants):
        shape = np.shape(got)
        if want is not None and shape != want.shape:
            raise ConfigError(f"params{jax.tree_util.keystr(path)} has shape {shape}; {what} expects {want.shape}")
        arr = np.asarray(got)
        if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
            returned = f"{what} returned " if what.endswith("init") else ""
            raise ConfigError(f"{returned}params{jax.tree_util.keystr(path)} must be finite floats, got dtype {arr.dtype}")
        checked.append(arr)
    if not checked:
        raise ConfigError(f"params hold no arrays; {what} needs its weights")
    return jax.tree.unflatten(jax.tree.structure(params), checked)


def _init_own(model, key):
    try:
        return init_params(model, key)
    except ConfigError:
        raise
    except Exception as err:  # the user's init failed: say so in one line, with its own words
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"your model's init(key) failed: {first}") from err


def _check_checkpoint_args(directory, every, resume: bool) -> None:
    if directory is None:
        if resume:
            raise ConfigError("resume needs a checkpoint folder (--checkpoint-dir)")
        if every is not None:
            raise ConfigError("checkpoint_every needs a checkpoint folder (--checkpoint-dir)")
    elif every is not None:
        check_positive_int("checkpoint_every", every)
