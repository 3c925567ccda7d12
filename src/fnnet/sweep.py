"""Many training runs as one compiled program: every (learning rate, seed) pair at once.

``sweep`` vmaps ``fnnet.train.train_from`` (a whole run as a pure function of
its start and learning rate) over the grid and compiles it once with ``jit``.
Each pair gets exactly the data, initial weights and per-step keys that
``fit(lesson, lr=lr, seed=seed)`` would give it, so the two agree.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.data import Sizes, check_lr, check_memory, check_positive_int, check_sizes, check_steps, make_data, run_keys
from fnnet.errors import ConfigError
from fnnet.lessons import get_lesson, lesson_functions
from fnnet.optimizers import OPTIMIZERS
from fnnet.train import DEFAULT_STEPS, compile_cached, train_from


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


@functools.lru_cache(maxsize=None)
def _vmapped(lesson_id: str, sizes: Sizes, optimizer: str, steps: int):
    """jit(vmap(whole run)) over a flat list of (start, lr) pairs.

    (Nesting a vmap over learning rates inside one over seeds, so that a seed's
    data meets all its learning rates in one wide matmul, was tried: it was
    under 10% faster here and changed the rounding, so runs no longer equal
    ``fit`` bit for bit.)
    """
    fns = lesson_functions(lesson_id, sizes)
    run = functools.partial(train_from, grad_fn=fns.grad_fn, make_optimizer=OPTIMIZERS[optimizer], steps=steps)
    return jax.jit(jax.vmap(run))


def sweep(lesson_id: str, lrs, seeds=1, *, steps: int | None = None, sizes=None, optimizer: str | None = None) -> SweepResult:
    """Train ``lesson_id`` for every (lr, seed) pair in one ``jit(vmap(...))`` program.

    Args:
      lesson_id: a JAX lesson (not ``numpy``).
      lrs: learning rates to try.
      seeds: a count K (seeds 0..K-1) or a list of seeds.
      steps: steps of each run (default 500).
      sizes: ``Sizes`` (default the tutorial's).
      optimizer: ``"sgd"``, ``"momentum"``, ``"adam"`` or ``"sgd-by-hand"``
        (default: the lesson's).

    Returns:
      A ``SweepResult``; ``losses[i, j]`` equals ``fit(lesson_id, lr=lrs[i],
      seed=seeds[j]).losses`` up to float rounding.

    Examples:
      >>> r = sweep("custom_module", lrs=[1e-4, 3e-4], seeds=2, steps=30, sizes=(8, 20, 10, 3))
      >>> r.losses.shape, r.best_lr
      ((2, 2, 30), 0.0003)
    """
    lesson = get_lesson(lesson_id)
    if lesson.backend != "jax":
        raise ConfigError(f"lesson {lesson.id!r} runs in NumPy; sweep runs the JAX lessons")
    lrs, seeds = _check_lrs(lrs), _check_seeds(seeds)
    steps = DEFAULT_STEPS if steps is None else check_steps(steps)  # bounded like fit's (issue 14)
    sizes = Sizes() if sizes is None else check_sizes(sizes)
    check_memory(sizes, runs=len(lrs) * len(seeds), steps=steps)  # before allocating anything (issue 14)
    seeds = tuple(seeds)
    optimizer = lesson.optimizer if optimizer is None else optimizer
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {optimizer!r}; expected one of: {', '.join(OPTIMIZERS)}")

    # each seed's start, drawn by the same compiled functions fit uses; then one program trains them all
    fns = lesson_functions(lesson.id, sizes)
    starts = {}
    for seed in seeds:
        keys = run_keys(seed)
        starts[seed] = (fns.init(keys.init), make_data(sizes, key=keys.data), keys.train)
    stack = lambda *trees: jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)
    params, batch, train_keys = stack(*[starts[seed] for _ in lrs for seed in seeds])
    grid_lr = jnp.asarray([lr for lr in lrs for _ in seeds], jnp.float32)
    args = (params, batch, train_keys, grid_lr)
    program, compile_seconds = compile_cached(_vmapped(lesson.id, sizes, optimizer, steps), *args)
    start = time.perf_counter()
    _, losses = program(*args)
    losses = np.asarray(losses).reshape(len(lrs), len(seeds), steps)
    run_seconds = time.perf_counter() - start
    config = dict(lesson=lesson.id, steps=steps, optimizer=optimizer, sizes=sizes._asdict())
    return SweepResult(lesson.id, lrs, seeds, losses, compile_seconds, run_seconds, config)
