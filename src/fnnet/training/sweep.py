"""Many training runs as one compiled program: every (learning rate, seed) pair at once.

``sweep`` vmaps a whole run (``fnnet.core.Train.run``: a pure function of its
start, data, key and learning rate) over the grid and compiles it once with
``jit``. It takes what ``fit`` takes (a lesson id, a ``fnnet.Model`` or an
``nnx.Module``), and each pair gets exactly the data, initial weights, minibatch
order and per-step keys that ``fit(model, lr=lr, seed=seed, ...)`` would give it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.training.config import resolve
from fnnet.training.core import make_train
from fnnet.data import check_lr, check_memory, check_positive_int, run_keys
from fnnet.errors import ConfigError

MAX_RUNS = 4096  # runs in one sweep program


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Losses of every run of a sweep.

    Attributes:
      lesson: the lesson id.
      lrs: the learning rates, in the order of axis 0.
      seeds: the seeds, in the order of axis 1.
      losses: float array (len(lrs), len(seeds), steps); a diverged run holds
        NaN or inf from the step it diverged on.
      compile_seconds: time spent compiling the vmapped program.
      run_seconds: time the compiled program ran.
      config: lesson, steps, optimizer and sizes.
    """

    lesson: str
    lrs: tuple
    seeds: tuple
    losses: np.ndarray
    compile_seconds: float
    run_seconds: float
    config: dict

    @property
    def final(self) -> np.ndarray:
        """Last loss of each run, (len(lrs), len(seeds))."""
        return self.losses[:, :, -1]

    @property
    def diverged(self) -> np.ndarray:
        """Whether each run produced a non-finite loss, (len(lrs), len(seeds))."""
        return ~np.isfinite(self.losses).all(axis=-1)

    @property
    def best_lr(self) -> float | None:
        """The learning rate with the lowest mean final loss among those whose runs all stayed finite."""
        ok = ~self.diverged.any(axis=1)
        if not ok.any():
            return None
        means = np.where(ok, self.final.mean(axis=1), np.inf)
        return self.lrs[int(np.argmin(means))]

    def record(self) -> dict:
        """A JSON-ready dict (non-finite losses as null)."""
        clean = lambda a: [[[v if math.isfinite(v) else None for v in run] for run in row] for row in a.tolist()]
        return {
            "lesson": self.lesson, "lrs": list(self.lrs), "seeds": list(self.seeds), "config": self.config,
            "best_lr": self.best_lr, "compile_seconds": self.compile_seconds, "run_seconds": self.run_seconds,
            "losses": clean(self.losses),
        }


def _check_lrs(lrs) -> tuple[float, ...]:
    if isinstance(lrs, (numbers.Real, str)) or not isinstance(lrs, Sequence) or len(lrs) == 0:
        raise ConfigError(f"lrs must be a non-empty list of learning rates, got {lrs!r}")
    return tuple(check_lr(lr) for lr in lrs)


def _check_seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return range(check_positive_int("seeds", seeds))  # a range until sweep has bounded it (issue 14)
    if not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise ConfigError(f"seeds must be a count or a non-empty list of seeds, got {seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise ConfigError(f"seeds must be non-negative integers, got {s!r}")
    return tuple(int(s) for s in seeds)


def sweep(model, lrs, seeds=1, *, steps: int | None = None, sizes=None, optimizer: str | None = None, data=None,
          loss=None, params=None, batch_size: int | None = None) -> SweepResult:
    """Train ``model`` for every (lr, seed) pair in one ``jit(vmap(...))`` program.

    Args:
      model: a JAX lesson id (not ``numpy``), a ``fnnet.Model`` or an ``nnx.Module``, as for ``fit``.
      lrs: learning rates to try.
      seeds: a count K (seeds 0..K-1) or a list of seeds.
      steps: steps of each run (default 500).
      sizes: a lesson's sizes (default the tutorial's).
      optimizer: ``"sgd"``, ``"momentum"``, ``"adam"`` or ``"sgd-by-hand"``
        (default: the lesson's; Adam for your model).
      data, loss, params, batch_size: as for ``fit``.

    Returns:
      A ``SweepResult``; ``losses[i, j]`` equals ``fit(model, lr=lrs[i],
      seed=seeds[j], ...).losses`` up to float rounding.

    Examples:
      >>> r = sweep("custom_module", lrs=[1e-4, 3e-4], seeds=2, steps=30, sizes=(8, 20, 10, 3))
      >>> r.losses.shape, r.best_lr
      ((2, 2, 30), 0.0003)
    """
    lrs, seeds = _check_lrs(lrs), _check_seeds(seeds)
    if optimizer is not None and not isinstance(optimizer, str):
        raise ConfigError("sweep takes an optimizer by name (sgd, momentum, adam, sgd-by-hand): it sweeps the rate")
    options = dict(steps=steps, lr=lrs[0], optimizer=optimizer, sizes=sizes, data=data, loss=loss, params=params,
                   batch_size=batch_size)
    first = resolve(model, seed=seeds[0], **options)  # checks every argument once, before any grid is drawn
    config = first.config
    if config.sizes is not None:  # a lesson: refuse a grid that cannot fit before allocating it
        check_memory(config.sizes, runs=len(lrs) * len(seeds), steps=config.steps)
    if len(lrs) * len(seeds) > MAX_RUNS:
        raise ConfigError(f"a sweep runs at most {MAX_RUNS} (lr, seed) pairs at once, got {len(lrs) * len(seeds)}")
    seeds = tuple(seeds)
    runs = [first] + [resolve(model, seed=seed, **options) for seed in seeds[1:]]
    if config.backend != "jax":
        raise ConfigError(f"lesson {config.name!r} runs in NumPy; sweep runs the JAX lessons")
    train = make_train(config.program())
    stack = lambda *trees: jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)  # noqa: E731
    shared_data = data is not None  # your data is the same for every run: one copy, not one per run
    params_grid = stack(*[run.params for _ in lrs for run in runs])
    data_grid = runs[0].data if shared_data else stack(*[run.data for _ in lrs for run in runs])
    keys = stack(*[run_keys(seed).train for _ in lrs for seed in seeds])
    grid_lr = jnp.asarray([lr for lr in lrs for _ in seeds], config.dtype)
    args = (params_grid, data_grid, keys, grid_lr)
    program, compile_seconds = train.compiled_runs(config.steps, *args, shared_data=shared_data)
    start = time.perf_counter()
    _, losses = program(*args)
    losses = np.asarray(losses).reshape(len(lrs), len(seeds), config.steps)
    run_seconds = time.perf_counter() - start
    record = dict(lesson=config.name, steps=config.steps, optimizer=config.optimizer_name, loss=config.loss_name,
                  sizes=None if config.sizes is None else config.sizes._asdict(), batch_size=config.batch_size)
    return SweepResult(config.name, lrs, seeds, losses, compile_seconds, run_seconds, record)
