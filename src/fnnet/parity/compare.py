"""PyTorch against JAX, lesson by lesson, from the same start.

``from_torch`` and ``to_torch`` move weights between the two (a torch
``Linear.weight`` is (out, in); fnnet's kernel is (in, out), so it is
transposed; nothing else changes, and the round trip is exact). ``compare``
draws the tutorial's start in PyTorch, trains the PyTorch reference
(``fnnet.torch_ref``) and ``fnnet.fit`` from the same weights, data and, for
``control_flow``, depth schedule, and records both loss curves and both
gradients of step 0.

Tolerances, the float64 rule for float32 curves that drift and the chaotic-tail rule are
``fnnet.parity.engine``'s, shared with the pages' proof (``fnnet.notebook.prove``); the
names are re-exported here (``TOLERANCES``, ``TAIL``, ``Comparison``, ``Check`` ...).
Timing, when asked for (``repeats``), is ``fnnet.parity.timing``'s, after the parity run.

Needs PyTorch (``pip install -e ".[compare]"``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from typing import Any, Mapping

import jax
import numpy as np

from fnnet.data import FAST_COMPILE, Sizes, check_memory, check_seed, check_sizes, check_steps, run_keys
from fnnet.errors import ConfigError
from fnnet.lessons import LESSONS, JAX, edition_ids, get_lesson, lesson_functions, sizes_of, to_backend
from fnnet.lessons.modules import draw_depth, draw_extra_terms
from fnnet.parity.engine import (GRAD_RTOL, GRAD_RTOL_64, HORIZON_MARGIN, LOSS_FLOOR, LOSS_RTOL, LOSS_RTOL_64, TAIL,
                                 TAIL_RTOL, TOLERANCES, Check, Comparison, horizon, settle, torch_name, torch_named)
from fnnet.parity.timing import time_pair
from fnnet.training.config import DEFAULT_STEPS
from fnnet.training.core import step_key
from fnnet.training.fit import fit

__all__ = ["GRAD_RTOL", "GRAD_RTOL_64", "HORIZON_MARGIN", "LOSS_FLOOR", "LOSS_RTOL", "LOSS_RTOL_64", "TAIL",
           "TAIL_RTOL", "TOLERANCES", "CHAOTIC", "Check", "Comparison", "check", "check_all", "compare",
           "depth_schedule", "from_runs", "from_torch", "predictability_horizon", "start_gradients", "to_torch",
           "torch_named"]

CHAOTIC = tuple(lesson.id for lesson in LESSONS.values() if lesson.chaotic)
"""Lessons whose curves are compared one by one only up to their predictability horizon (``Lesson.chaotic``)."""
_path_to_torch_name = torch_name  # the old private name, for code that reached for it


def _torch():
    from fnnet.parity.torch_ref import require_torch

    return require_torch()


def from_torch(lesson_id: str, source) -> dict:
    """Weights from PyTorch in the structure ``fnnet.fit(lesson_id, params=...)`` takes.

    Args:
      lesson_id: the lesson the weights are for.
      source: for the raw-weight lessons, ``{"w1": ..., "w2": ...}`` or
        ``(w1, w2)`` (torch tensors or NumPy arrays, (d_in, hidden) and
        (hidden, d_out)); for the sine edition's scalar lessons
        ``{"a", "b", "c", "d"}`` or ``(a, b, c, d)``; for the module lessons
        of either edition, the torch module or its ``state_dict()`` (tensors
        or NumPy arrays under the module's own names, as ``fnnet train
        --save`` writes them: names and shapes are checked against the
        lesson's module).

    Returns:
      A nested dict of NumPy arrays (dtype kept; ``fit`` casts).

    Examples:
      >>> import torch
      >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
      >>> params = from_torch("nn", model)
      >>> jax.tree.map(np.shape, params)
      {'layers': {0: {'bias': (3,), 'kernel': (4, 3)}, 2: {'bias': (2,), 'kernel': (3, 2)}}}
      >>> jax.tree.map(np.shape, from_torch("nn", model.state_dict())) == jax.tree.map(np.shape, params)
      True
      >>> from_torch("nn", {**model.state_dict(), "2.weight": torch.ones(2, 5)})
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: params do not fit lesson 'nn''s torch module: '2.weight' has shape (2, 5), the module's is (2, 3)
    """
    lesson = get_lesson(lesson_id)
    torch = _torch()
    if lesson.cell == "scalars":  # the sine edition's a, b, c, d
        if isinstance(source, Mapping) and set(source) == set("abcd"):
            return {k: _numpy(source[k]) for k in "abcd"}
        if isinstance(source, (tuple, list)) and len(source) == 4:
            return {k: _numpy(v) for k, v in zip("abcd", source)}
        raise ConfigError(f"lesson {lesson_id!r} takes scalars {{'a', 'b', 'c', 'd'}} or (a, b, c, d), "
                          f"got {type(source).__name__}")
    if lesson.cell == "weights":
        if isinstance(source, Mapping) and set(source) == {"w1", "w2"}:
            w1, w2 = source["w1"], source["w2"]
        elif isinstance(source, (tuple, list)) and len(source) == 2:
            w1, w2 = source
        else:
            raise ConfigError(f"lesson {lesson_id!r} takes weights {{'w1', 'w2'}} or (w1, w2), got {type(source).__name__}")
        return {"w1": _numpy(w1), "w2": _numpy(w2)}
    if isinstance(source, Mapping):  # a state_dict (torch's names and layout, as --save writes them)
        from fnnet.parity.torch_ref import build_module

        names = list(build_module(lesson, Sizes(1, 1, 1, 1)).state_dict())  # the names do not depend on sizes
        if set(map(str, source)) != set(names):
            raise ConfigError(f"lesson {lesson_id!r} takes a torch module or its state_dict() with "
                              f"{', '.join(names)}; got {', '.join(map(str, source)) or 'an empty dict'}")
        source = to_torch(lesson_id, {str(name): _numpy(value) for name, value in source.items()})
    if not isinstance(source, torch.nn.Module):
        raise ConfigError(f"lesson {lesson_id!r} takes a torch module or its state_dict(), got {type(source).__name__}")
    sequential = isinstance(source, torch.nn.Sequential)
    params: dict[Any, Any] = {}
    for name, tensor in source.state_dict().items():
        *where, leaf = name.split(".")
        node = params.setdefault("layers", {}) if sequential else params
        for part in where:
            node = node.setdefault(int(part) if sequential and part.isdigit() else part, {})
        value = _numpy(tensor)
        node["kernel" if leaf == "weight" else leaf] = value.T.copy() if leaf == "weight" else value
    return params


def _numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.array(a, copy=True)


def to_torch(lesson_id: str, params):
    """fnnet parameters as PyTorch: ``{"w1", "w2"}`` tensors, or the lesson's torch module with them loaded.

    ``params`` is fnnet's structure, or weights already under PyTorch's names
    and layout, such as ``dict(np.load(path))`` of a file that ``fnnet train
    --save path`` wrote.

    Examples:
      >>> params = {"w1": np.ones((4, 3), np.float32), "w2": np.ones((3, 2), np.float32)}
      >>> to_torch("autograd", params)["w1"].shape
      torch.Size([4, 3])
      >>> saved = {"0.weight": np.ones((3, 4), np.float32), "0.bias": np.zeros(3, np.float32),
      ...          "2.weight": np.ones((2, 3), np.float32), "2.bias": np.zeros(2, np.float32)}
      >>> to_torch("nn", saved)[0].weight.shape
      torch.Size([3, 4])
    """
    lesson = get_lesson(lesson_id)
    torch = _torch()
    from fnnet.parity.torch_ref import build_module

    named = {name: torch.from_numpy(np.array(a, copy=True)) for name, a in torch_named(params).items()}
    if not lesson.torch_module:  # raw weights or scalars
        return named
    if lesson.edition == "sine":  # fixed shapes: the module needs no sizes
        return _load(build_module(lesson), named, lesson_id)
    weights = [tuple(a.shape) for name, a in named.items() if name.endswith("weight") and a.ndim == 2]
    if not weights:
        raise ConfigError(f"params hold no weight matrix for lesson {lesson_id!r}")
    module = build_module(lesson, Sizes(1, weights[0][1], weights[0][0], weights[-1][0]))  # torch's (out, in) layout
    return _load(module, named, lesson_id)


def _load(module, named: dict, lesson_id: str):
    """``module`` with ``named`` loaded; a ConfigError line naming the first missing, extra or mis-shaped name."""
    expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    for name in expected:
        if name not in named:
            raise ConfigError(f"params do not fit lesson {lesson_id!r}'s torch module: no {name!r} "
                              f"(expected {', '.join(expected)})")
    for name, tensor in named.items():
        if name not in expected:
            raise ConfigError(f"params do not fit lesson {lesson_id!r}'s torch module: {name!r} is not one of its "
                              f"names ({', '.join(expected)})")
        if tuple(tensor.shape) != expected[name]:
            raise ConfigError(f"params do not fit lesson {lesson_id!r}'s torch module: {name!r} has shape "
                              f"{tuple(tensor.shape)}, the module's is {expected[name]}")
    module.load_state_dict(named, strict=True)
    return module


def _dynamic_ids() -> list[str]:
    """The lessons that draw a depth (or extra terms) per step (``Lesson.max_draw``)."""
    return [lesson.id for lesson in LESSONS.values() if lesson.max_draw is not None]


def depth_schedule(seed: int, steps: int, lesson: str | None = None) -> np.ndarray:
    """DynamicNet's choice at each step of ``fit(lesson, seed=seed)``, for PyTorch to replay.

    For ``control_flow`` (the default) the number of times the middle layer is
    reused (0..3); for ``sine_control_flow`` the number of extra terms e x^4, e x^5 (0..2).

    Examples:
      >>> depth_schedule(0, 8).shape
      (8,)
      >>> set(depth_schedule(0, 300, lesson="sine_control_flow").tolist())
      {0, 1, 2}
    """
    dynamic = _dynamic_ids()
    lesson = dynamic[0] if lesson is None else lesson
    if lesson not in dynamic:
        raise ConfigError(f"depth_schedule is for {' or '.join(dynamic)}, got {lesson!r}")
    steps = check_steps(steps)  # -1 or 2.5 steps is an error, not an empty or truncated schedule
    return np.asarray(_schedule(run_keys(seed).train, np.arange(steps), LESSONS[lesson].edition == "classic"))


@functools.partial(jax.jit, static_argnames="classic", compiler_options=FAST_COMPILE)  # one compiled call
def _schedule(train_key, step_numbers, classic: bool):
    draw = draw_depth if classic else draw_extra_terms
    return jax.vmap(lambda t: draw(step_key(train_key, t)))(step_numbers)


def compare(
    lesson_id: str, *, steps: int | None = None, seed: int = 0, sizes=None, perturb: float = 0.0, x64: bool = False,
    repeats: int = 0,
) -> Comparison:
    """Train ``lesson_id`` in PyTorch and in fnnet from the same weights and data, and compare.

    The start is drawn as the tutorial draws it (``torch.manual_seed(seed)``,
    ``randn`` data, torch's own init; NumPy's generator for the NumPy lessons) and given
    to fnnet through ``from_torch`` and ``fit(params=..., data=...)``.

    Args:
      lesson_id: a key of ``fnnet.LESSONS``.
      steps: training steps (default: the lesson's, 500 classic, 2000 sine, 30000 sine_control_flow).
      seed: seeds the start and, for the DynamicNet lessons, the depth schedule.
      sizes: ``Sizes`` (default the tutorial's).
      perturb: scale fnnet's starting weights by ``1 + perturb``, to see the
        check fail (0 for a real comparison).
      x64: run both sides in float64 instead of the tutorial's float32.
      repeats: timed rounds after the parity run (0: report the parity run's
        time, run with one torch and one BLAS thread). PyTorch's thread count
        (and BLAS's, for the NumPy lessons) is first chosen as the faster of 1
        and every core on short runs; then each round runs PyTorch and fnnet
        once, alternating which goes first; ms/step is the median of the rounds
        (``fnnet.parity.timing.time_pair``).

    Examples:
      >>> c = compare("autograd", steps=20, sizes=(8, 20, 10, 3))
      >>> c.ok, c.grad_diff < 1e-5
      (True, True)
    """
    lesson = get_lesson(lesson_id)
    steps, sizes = _checked(lesson, steps, sizes, seed, perturb, repeats)
    torch = _torch()
    # The parity run gives torch and NumPy's BLAS one thread: at the tutorial's sizes more do not help, and on
    # a busy machine oversubscribed threads made a run 10-100x slower. The timed rounds choose between 1 and all.
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    start, x, y, params, data = _start(lesson, sizes, seed, x64, perturb)
    dtype = "float64" if x64 else "float32"
    with jax.enable_x64(x64):
        extra = {"depths": depth_schedule(seed, steps, lesson.id)} if lesson.max_draw is not None else {}
        start0 = copy.deepcopy(start)  # the reference trains `start` in place
        run_ours = lambda: fit(lesson.id, steps=steps, seed=seed, sizes=sizes, params=params, data=data,
                               progress=False, dtype=dtype)
        with threadpool_limits(1):
            ref = _reference(lesson, start, x, y, steps, extra)
            ours = run_ours()
        result = from_runs(lesson.id, ref, ours, params, data, seed=seed, threads=1)
        if lesson.chaotic:
            found = predictability_horizon(lesson.id, params, data, ours.losses, seed=seed, dtype=dtype)
            result = dataclasses.replace(result, horizon=found)
        if not repeats:
            return result
        timing = _time(lesson, start0, x, y, steps, extra, run_ours, repeats)
    torch.set_num_threads(1)  # as the parity run left it
    return dataclasses.replace(result, **timing._asdict())


def _checked(lesson, steps, sizes, seed, perturb, repeats) -> tuple[int, Sizes | None]:
    """``compare``'s arguments checked: the steps (the lesson's by default) and the sizes (None for the sine edition)."""
    steps = None if steps is None else check_steps(steps)  # bounded like fit's (issue 14)
    if lesson.edition == "sine":
        if sizes is not None:
            raise ConfigError(f"lesson {lesson.id!r} fits sin(x) on fixed data; sizes are for the classic edition")
        steps = lesson.steps if steps is None else steps
    else:
        steps = DEFAULT_STEPS if steps is None else steps
        sizes = Sizes() if sizes is None else check_sizes(sizes)
        check_memory(sizes, runs=2, steps=steps)  # torch's run and fnnet's, refused before allocating (issue 14)
    check_seed(seed)
    if not np.isfinite(perturb):
        raise ConfigError(f"perturb must be a finite number, got {perturb}")
    _torch()
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 0:
        raise ConfigError(f"repeats must be a non-negative integer, got {repeats!r}")
    return steps, sizes


def _start(lesson, sizes, seed: int, x64: bool, perturb: float):
    """The tutorial's start ``(start, x, y)`` as PyTorch takes it, and fnnet's ``params`` and ``data`` from it."""
    torch = _torch()
    from fnnet.parity import torch_ref

    start, x, y = torch_ref.initial(lesson.id, sizes, seed)
    if x64 and not lesson.in_numpy:  # the NumPy lessons are float64 already
        start = start.double() if isinstance(start, torch.nn.Module) else {k: v.double() for k, v in start.items()}
        x, y = x.double(), y.double()
    params = from_torch(lesson.id, start)  # taken before torch trains (and changes) the module
    params = jax.tree.map(lambda a: a * (1 + perturb), params)
    x_np, y_np = _numpy(x), _numpy(y)
    if lesson.edition == "sine":  # the tutorial's (2000,) vectors as fnnet's (rows, 1) columns; the features are (2000, 3) already
        x_np, y_np = x_np.reshape(len(x_np), -1), y_np[:, None]
    return start, x, y, params, (x_np, y_np)


def _reference(lesson, start, x, y, steps: int, extra: dict):
    """The lesson's PyTorch reference (``torch_ref``, the record's ``torch_run``) from ``start``, at the tutorial's rate."""
    from fnnet.parity import torch_ref

    return getattr(torch_ref, lesson.torch_run)(start, x, y, steps=steps, lr=lesson.lr, **extra)


def _time(lesson, start, x, y, steps: int, extra: dict, run_ours, repeats: int):
    """``repeats`` timed rounds of the reference (from copies of ``start``) and of ``run_ours``, apart from parity."""
    from threadpoolctl import threadpool_limits

    torch = _torch()

    def run_ref(threads, n):
        torch.set_num_threads(threads)
        with threadpool_limits(threads):  # the NumPy lessons' reference is NumPy
            return _reference(lesson, copy.deepcopy(start), x, y, n or steps, extra).seconds

    def run_jax(threads):
        with threadpool_limits(threads):  # XLA keeps its own pool; this is for the NumPy lessons' BLAS
            return run_ours().run_seconds

    return time_pair(run_ref, run_jax, rounds=repeats, cores=os.cpu_count() or 1, short=min(steps, 50))


def predictability_horizon(lesson_id: str, params, data, losses, *, seed: int = 0, dtype: str = "float32") -> int | None:
    """The first step where a one-rounding-error change of the start alone moves fnnet's loss by LOSS_RTOL.

    ``sine_optim`` (RMSprop at lr 1e-3) is chaotic once it nears its floor:
    rounding differences grow a hundredfold in a few steps, in float64 as in
    float32, so no two implementations (nor one with its start scaled by
    ``1 +- eps``, eps the dtype's rounding error) follow the same curve past a
    point that depends on the seed. That point is measured here (``fnnet.parity.engine.horizon``):
    ``losses`` (a run from ``params``) against runs from ``params * (1 + eps)`` and
    ``params * (1 - eps)``; None if neither leaves it.
    """
    def run_from(factor: float) -> np.ndarray:
        start = jax.tree.map(lambda a: (np.asarray(a) * factor).astype(dtype), params)
        return fit(lesson_id, steps=len(losses), seed=seed, params=start, data=data, progress=False, dtype=dtype).losses

    return horizon(np.asarray(losses), run_from, dtype)


def start_gradients(lesson_id: str, params, data, *, seed: int = 0, dtype: str | None = None) -> dict:
    """fnnet's gradients at ``params`` on ``data`` for the step-0 key of ``seed``, named and laid out as torch's.

    Examples:
      >>> from fnnet.parity import torch_ref
      >>> start, x, y = torch_ref.initial("nn", Sizes(4, 6, 5, 2), 0)
      >>> sorted(start_gradients("nn", from_torch("nn", start), (x.numpy(), y.numpy())))
      ['0.bias', '0.weight', '2.bias', '2.weight']
    """
    lesson = get_lesson(lesson_id)
    x, y = data
    sizes = None if lesson.edition == "sine" else Sizes(np.shape(x)[0], np.shape(x)[1],
                                                         sizes_of(lesson.id, params)["hidden"], np.shape(y)[1])
    fns = lesson_functions(lesson.id, sizes)
    key0 = None if lesson.in_numpy else step_key(run_keys(seed).train, 0)
    _, grads = fns.grad_fn(to_backend(params, lesson.backend, dtype), to_backend((x, y), lesson.backend, dtype), key0)
    return torch_named(grads)


def from_runs(lesson_id: str, ref, ours, params, data, *, seed: int = 0, threads: int | None = None) -> Comparison:
    """A ``Comparison`` of a reference run (``fnnet.torch_ref``) and an ``fnnet.fit`` result from the same start.

    ``params`` and ``data`` are the start both were given (fnnet's structure).
    """
    lesson = get_lesson(lesson_id)
    dtype = ours.config.get("dtype", "float32")
    grads = start_gradients(lesson.id, params, data, seed=seed, dtype=dtype if lesson.backend == JAX else None)
    sizes = None if ours.config["sizes"] is None else Sizes(**ours.config["sizes"])
    torch = _torch()
    return Comparison(
        lesson.id, len(ours.losses), seed, sizes, np.asarray(ref.losses, np.float64),
        np.asarray(ours.losses, np.float64), ref.grads, grads, ref.seconds, ours.run_seconds,
        ours.compile_seconds, threads or torch.get_num_threads(), dtype,
        torch_params=getattr(ref, "params", None), jax_params=torch_named(ours.params),
    )


def check(lesson_id: str, *, x64: bool = False, repeats: int = 0, **kwargs) -> Check:
    """Compare a lesson in float32; if only its curves drift apart, settle it in float64 (``fnnet.parity.engine.settle``).

    With ``x64=True`` the comparison is made in float64 alone. The float64 rerun is not timed again.

    Examples:
      >>> check("tensors", steps=10, sizes=(8, 20, 10, 3)).verdict
      'ok'
    """
    def run(wide: bool) -> Comparison:
        return compare(lesson_id, x64=True, **kwargs) if wide else compare(lesson_id, x64=x64, repeats=repeats, **kwargs)

    return settle(run)


def check_all(lesson_ids=None, **kwargs) -> list[Check]:
    """``check`` for several lessons (default: the eight of the classic edition)."""
    return [check(lesson_id, **kwargs) for lesson_id in (lesson_ids or edition_ids("classic"))]
