"""The four codings of a lesson, run from one start, and the two pairs of them that must agree.

A lesson is coded four times on purpose, each for its reader: the page's PyTorch cell (the tutorial), the
page's JAX cell (plain JAX), the library's lesson (``fnnet.fit``) and ``fnnet.torch_ref`` (what ``fnnet
compare`` trains). ``codings`` builds all four from the start the page's PyTorch cell draws (``load_cells``);
``agreement`` judges the two pairs, each in float64 by ``fnnet.parity.engine``'s rule (curves within
``LOSS_RTOL_64``, first updates within ``GRAD_RTOL_64``; a chaotic lesson's curves up to its horizon):

- the page's PyTorch cell and ``torch_ref``: the page is the tutorial, so ``torch_ref`` follows it;
- the page's JAX cell and the library: what a learner writes and what ``fnnet.fit`` runs.

With the other two proofs (``prove``: the page's two cells; ``fnnet.compare``: the library and
``torch_ref``) no coding can drift from the others unnoticed. A DynamicNet lesson's schedule is the one
``fit`` draws from the seed (``fnnet.compare.depth_schedule``), given to the other three.

Needs PyTorch (``pip install -e ".[compare]"``).
"""

from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from fnnet.lessons import Lesson, get_lesson
from fnnet.parity.engine import Comparison, first_update, horizon, torch_named
from fnnet.parity.proof import Start, _hidden, _np, _scaled, _Side, cell_args, cell_sides, load_cells

Runner = Callable[..., tuple[dict, np.ndarray]]
"""``run(steps, factor=1.0) -> (weights by torch name, losses)``: one coding trained in float64 from the start
times ``factor``, a fresh copy each call."""

PYTORCH_CELL, JAX_CELL, TORCH_REF, LIBRARY = "pytorch cell", "jax cell", "torch_ref", "library"
PAIRS = ((PYTORCH_CELL, TORCH_REF), (JAX_CELL, LIBRARY))
"""The pairs that must agree: (the page's coding, the one that follows it)."""


def codings(name: str, lesson_id: str, *, steps: int, seed: int = 0,
            folder: str | Path | None = None) -> dict[str, Runner]:
    """The four codings of ``lesson_id`` as runners from the start notebook ``name``'s PyTorch cell draws.

    Loading the cells leaves JAX's global float64 switch as it found it (the
    NumPy pages' JAX cells turn it on); every runner computes in float64.
    """
    lesson = get_lesson(lesson_id)
    with _x64_kept():
        start, torch_cell, jax_cell = load_cells(name, lesson.id, seed=seed, steps=steps, folder=folder)
    if start.depths is not None:  # the schedule fit draws from the seed, so that the library can follow it
        from fnnet.parity.compare import depth_schedule

        start = start._replace(depths=[int(d) for d in depth_schedule(seed, steps, lesson.id)])
    torch_side, jax_side = cell_sides(start, torch_cell, jax_cell)
    return {PYTORCH_CELL: _cell_runner(torch_side, start), JAX_CELL: _cell_runner(jax_side, start),
            TORCH_REF: _reference_runner(start), LIBRARY: _library_runner(start, seed)}


def agreement(name: str, lesson_id: str, *, steps: int = 30, seed: int = 0,
              folder: str | Path | None = None) -> dict[str, Comparison]:
    """``{"pytorch cell vs torch_ref": Comparison, "jax cell vs library": Comparison}``, both in float64.

    Each ``Comparison``'s ``ok`` is the verdict and ``summary()`` its numbers.
    """
    lesson = get_lesson(lesson_id)
    runs = codings(name, lesson.id, steps=steps, seed=seed, folder=folder)
    return {f"{ref} vs {ours}": compare_codings(lesson, runs[ref], runs[ours], steps=steps, seed=seed)
            for ref, ours in PAIRS}


def compare_codings(lesson: Lesson, ref: Runner, ours: Runner, *, steps: int, seed: int = 0) -> Comparison:
    """Two codings from one start, in float64: their first updates over the lesson's rate, and their curves.

    The update divided by the rate is the step-0 gradient for SGD and momentum
    (``fnnet.parity.engine.first_update``); a chaotic lesson's horizon is
    measured on ``ours`` from its start scaled by ``1 +- eps``.
    """
    updates = []
    for run in (ref, ours):
        (before, _), (after, _) = run(0), run(1)
        updates.append(first_update(before, after, lesson.lr))
    if set(updates[0]) != set(updates[1]):
        raise ValueError(f"the two codings name their parameters differently: {sorted(updates[0])} "
                         f"and {sorted(updates[1])}")
    (_, ref_losses), ref_seconds = _timed(ref, steps)
    (_, our_losses), our_seconds = _timed(ours, steps)
    chaos = horizon(our_losses, lambda factor: ours(steps, factor)[1], "float64") if lesson.chaotic else None
    return Comparison(lesson.id, steps, seed, None, ref_losses, our_losses, *updates, ref_seconds, our_seconds,
                      0.0, 1, "float64", horizon=chaos)


def _timed(run: Runner, steps: int):
    clock = time.perf_counter()
    result = run(steps)
    return result, time.perf_counter() - clock


@contextlib.contextmanager
def _x64_kept():
    before = jax.config.jax_enable_x64
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


# ---------------------------------------------------------------- the four runners


def _cell_runner(side: _Side, start: Start) -> Runner:
    """A page cell's ``train`` from ``start`` (``fnnet.notebook.cell_args``, float64)."""
    def run(steps: int, factor: float = 1.0):
        with jax.enable_x64(True):
            args = cell_args(start, side, wide=True)
            return side.run_from(args._replace(start=_times(args.start, factor)), steps)

    return run


def _reference_runner(start: Start) -> Runner:
    """The lesson's ``torch_ref`` loop (its record's ``torch_run``) from ``start``, in float64."""
    from fnnet.parity import torch_ref

    lesson = start.lesson
    weights, x, y = _reference_start(start)
    extra = {} if start.depths is None else {"depths": start.depths}

    def run(steps: int, factor: float = 1.0):
        loop = getattr(torch_ref, lesson.torch_run)  # looked up at each run: a test may replace it
        result = loop(copy.deepcopy(_times(weights, factor)), x, y, steps=steps, lr=lesson.lr, **extra)  # trains in place
        return {k: _np(v) for k, v in result.params.items()}, np.asarray(result.losses, np.float64)

    return run


def _reference_start(start: Start):
    """``start`` as ``torch_ref`` takes it: ``{"w1", "w2"}`` / ``{"a" .. "d"}`` or its own module, and data."""
    lesson = start.lesson
    names = ("w1", "w2") if lesson.cell == "weights" else tuple("abcd")
    if lesson.in_numpy:
        return {k: _np(w) for k, w in zip(names, start.weights)}, start.x.copy(), start.y.copy()
    import torch

    from fnnet.parity.compare import from_torch, to_torch

    if lesson.torch_module:
        weights = to_torch(lesson.id, from_torch(lesson.id, start.weights)).double()
    else:
        weights = {k: torch.from_numpy(_np(w).copy()) for k, w in zip(names, start.weights)}
    return weights, torch.from_numpy(start.x.copy()), torch.from_numpy(start.y.copy())


def _library_runner(start: Start, seed: int) -> Runner:
    """``fnnet.fit`` of the lesson from ``start`` (``from_torch``), in float64, with the data in fnnet's shapes."""
    from fnnet.data import Sizes
    from fnnet.parity.compare import from_torch
    from fnnet.training.fit import fit

    lesson = start.lesson
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), from_torch(lesson.id, start.weights))
    x, y = start.x, start.y
    if lesson.edition == "sine":  # the tutorial's (2000,) vectors as fnnet's (rows, 1) columns
        x, y = x.reshape(len(x), -1), y.reshape(len(y), 1)
        sizes = None
    else:
        sizes = Sizes(*x.shape, _hidden(start.weights, lesson.cell), y.shape[1])

    def run(steps: int, factor: float = 1.0):
        moved = _times(params, factor)
        if steps == 0:
            return torch_named(moved), np.zeros(0)
        with jax.enable_x64(True):  # one-step chunks: the first update and the curve share one compiled program
            result = fit(lesson.id, steps=steps, seed=seed, sizes=sizes, params=moved, data=(x, y), progress=False,
                         log_every=1, dtype="float64")
        named = {k: np.asarray(v, np.float64) for k, v in torch_named(result.params).items()}
        return named, np.asarray(result.losses, np.float64)

    return run


def _times(value, factor: float):
    """A start in any coding's form (arrays, tensors, modules, nested in tuples or dicts) times ``factor``.

    Examples:
      >>> _times({"w": (np.ones(2), 2.0)}, 0.5)
      {'w': (array([0.5, 0.5]), 1.0)}
    """
    if factor == 1.0:
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_times(v, factor) for v in value)
    if isinstance(value, dict):
        return {k: _times(v, factor) for k, v in value.items()}
    if hasattr(value, "named_parameters"):  # a torch module
        import torch

        moved = copy.deepcopy(value)
        with torch.no_grad():
            for p in moved.parameters():
                p.mul_(factor)
        return moved
    if hasattr(value, "detach"):  # a torch tensor
        return (value.detach() * factor).requires_grad_(value.requires_grad)
    if isinstance(value, jax.Array):
        return jax.numpy.asarray(np.asarray(value, np.float64) * factor)
    if hasattr(value, "__call__"):  # an nnx module (the JAX cell's model)
        return _scaled(value, factor, "model", "float64")
    if isinstance(value, np.ndarray):
        return np.asarray(value * factor, np.float64)
    return type(value)(value * factor)  # a Python or NumPy scalar
