"""PyTorch against JAX, lesson by lesson, from the same start.

``from_torch`` and ``to_torch`` move weights between the two (a torch
``Linear.weight`` is (out, in); fnnet's kernel is (in, out), so it is
transposed; nothing else changes, and the round trip is exact). ``compare``
draws the tutorial's start in PyTorch, trains the PyTorch reference
(``fnnet.torch_ref``) and ``fnnet.fit`` from the same weights, data and, for
``control_flow``, depth schedule, and records both loss curves and both
gradients of step 0.

Tolerances, and why (float32, the tutorial's precision):

* gradients at step 0: ``GRAD_RTOL = 1e-5``, the largest difference relative to
  the largest entry of that gradient. Both sides evaluate the same formula in
  float32 from identical inputs; only the order of summation in the matmuls
  differs, which costs a few ulps (~1e-7) times the growth of rounding over a
  1000-long dot product.
* loss curves: ``LOSS_RTOL = 1e-3`` relative to the PyTorch loss, over the steps
  whose loss is above ``1e-6`` of the first. Below a millionth of the starting
  loss the loss is itself mostly float32 rounding of a near-zero residual.

Rounding differences of one step feed into the next. For most lessons they stay
near 1e-5, but DynamicNet with momentum, and Adam near its minimum, amplify them:
over 500 steps a float32 run of *either* framework can leave the exact (float64)
trajectory by 1e-2 or more, depending on seed and sizes. So when the float32
curves are further apart than ``LOSS_RTOL`` while the step-0 gradients agree,
``check`` runs the lesson again in float64 on both sides, where nothing is lost
to rounding: there the curves must agree to ``LOSS_RTOL_64 = 1e-9`` (they do to
~1e-13) and the gradients to ``GRAD_RTOL_64 = 1e-10``. A real difference in what
the two sides compute shows in float64 as plainly as in float32.

Needs PyTorch (``pip install -e ".[compare]"``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import statistics
from typing import Any, Mapping

import jax
import numpy as np

from fnnet.data import Sizes, check_memory, check_seed, check_sizes, check_steps, run_keys
from fnnet.errors import ConfigError
from fnnet.lessons import LESSONS, get_lesson, lesson_functions, sizes_of, to_backend
from fnnet.modules import draw_depth
from fnnet.train import DEFAULT_STEPS, fit, step_key

GRAD_RTOL = 1e-5
LOSS_RTOL = 1e-3
GRAD_RTOL_64 = 1e-10
LOSS_RTOL_64 = 1e-9
LOSS_FLOOR = 1e-6  # losses below this fraction of the first are not compared
TOLERANCES = {"float32": (GRAD_RTOL, LOSS_RTOL), "float64": (GRAD_RTOL_64, LOSS_RTOL_64)}


def _torch():
    from fnnet.torch_ref import require_torch

    return require_torch()


def _path_to_torch_name(path) -> tuple[str, bool]:
    """('layers', 0, 'kernel') -> ('0.weight', transpose=True); ('w1',) -> ('w1', False)."""
    parts = [str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
    if parts and parts[0] == "layers":  # nnx.Sequential keeps its children under .layers
        parts = parts[1:]
    if parts[-1] == "kernel":
        return ".".join(parts[:-1] + ["weight"]), True
    return ".".join(parts), False


def torch_named(params) -> dict[str, np.ndarray]:
    """fnnet parameters (or gradients) as ``{torch name: array in torch's layout}``.

    Examples:
      >>> p = {"linear1": {"kernel": np.ones((3, 2)), "bias": np.zeros(2)}}
      >>> {k: v.shape for k, v in torch_named(p).items()}
      {'linear1.bias': (2,), 'linear1.weight': (2, 3)}
    """
    named = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name, transpose = _path_to_torch_name(path)
        leaf = np.asarray(leaf)
        named[name] = leaf.T if transpose else leaf
    return named


def from_torch(lesson_id: str, source) -> dict:
    """Weights from PyTorch in the structure ``fnnet.fit(lesson_id, params=...)`` takes.

    Args:
      lesson_id: the lesson the weights are for.
      source: for the raw-weight lessons, ``{"w1": ..., "w2": ...}`` or
        ``(w1, w2)`` (torch tensors or NumPy arrays, (d_in, hidden) and
        (hidden, d_out)); for the ``nn`` family, the torch module.

    Returns:
      A nested dict of NumPy arrays (dtype kept; ``fit`` casts).

    Examples:
      >>> import torch
      >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
      >>> params = from_torch("nn", model)
      >>> jax.tree.map(np.shape, params)
      {'layers': {0: {'bias': (3,), 'kernel': (4, 3)}, 2: {'bias': (2,), 'kernel': (3, 2)}}}
    """
    lesson = get_lesson(lesson_id)
    torch = _torch()
    if lesson.model.startswith("weights"):
        if isinstance(source, Mapping) and set(source) == {"w1", "w2"}:
            w1, w2 = source["w1"], source["w2"]
        elif isinstance(source, (tuple, list)) and len(source) == 2:
            w1, w2 = source
        else:
            raise ConfigError(f"lesson {lesson_id!r} takes weights {{'w1', 'w2'}} or (w1, w2), got {type(source).__name__}")
        return {"w1": _numpy(w1), "w2": _numpy(w2)}
    if not isinstance(source, torch.nn.Module):
        raise ConfigError(f"lesson {lesson_id!r} takes a torch module, got {type(source).__name__}")
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
    from fnnet.torch_ref import MODULES

    named = {name: torch.from_numpy(np.array(a, copy=True)) for name, a in torch_named(params).items()}
    if lesson.model.startswith("weights"):
        return named
    weights = [tuple(a.shape) for name, a in named.items() if name.endswith("weight") and a.ndim == 2]
    if not weights:
        raise ConfigError(f"params hold no weight matrix for lesson {lesson_id!r}")
    module = MODULES[lesson_id](Sizes(1, weights[0][1], weights[0][0], weights[-1][0]))  # torch's (out, in) layout
    try:
        module.load_state_dict(named, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"params do not fit lesson {lesson_id!r}'s torch module: {first}") from None
    return module


def depth_schedule(seed: int, steps: int) -> np.ndarray:
    """DynamicNet's depth at each step of ``fit("control_flow", seed=seed)``.

    Examples:
      >>> depth_schedule(0, 8).shape
      (8,)
    """
    train_key = run_keys(seed).train
    return np.asarray(jax.vmap(lambda t: draw_depth(step_key(train_key, t)))(np.arange(steps)))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One lesson run in PyTorch and in fnnet from the same start."""

    lesson: str
    steps: int
    seed: int
    sizes: Sizes
    torch_losses: np.ndarray
    jax_losses: np.ndarray
    torch_grads: dict  # step-0 gradients by torch parameter name
    jax_grads: dict  # the same names and layout
    torch_seconds: float  # median over the timed runs (the parity run alone when there are none)
    jax_seconds: float  # run time, compile excluded; median as above
    jax_compile_seconds: float
    torch_threads: int
    dtype: str = "float32"
    torch_runs: tuple = ()  # seconds of each timed run, with torch_threads threads
    jax_runs: tuple = ()
    torch_threads_tried: dict = dataclasses.field(default_factory=dict)  # threads -> seconds of short runs

    @property
    def loss_diff(self) -> float:
        """Worst |torch - jax| / torch over the steps whose torch loss is above LOSS_FLOOR of the first."""
        t, j = self.torch_losses, self.jax_losses
        keep = t > LOSS_FLOOR * t[0]
        return float(np.max(np.abs(t[keep] - j[keep]) / t[keep])) if keep.any() else 0.0

    @property
    def grad_diff(self) -> float:
        """Worst over parameters of max|torch - jax| / max|torch| of the step-0 gradient."""
        worst = 0.0
        for name, g in self.torch_grads.items():
            scale = np.max(np.abs(g)) or 1.0
            worst = max(worst, float(np.max(np.abs(g - self.jax_grads[name])) / scale))
        return worst

    @property
    def grads_ok(self) -> bool:
        return self.grad_diff <= TOLERANCES[self.dtype][0]

    @property
    def losses_ok(self) -> bool:
        return self.loss_diff <= TOLERANCES[self.dtype][1]

    @property
    def ok(self) -> bool:
        return self.grads_ok and self.losses_ok

    def record(self) -> dict:
        """A JSON-ready summary (losses in full, gradients as their differences)."""
        return {
            "lesson": self.lesson, "dtype": self.dtype, "steps": self.steps, "seed": self.seed,
            "sizes": self.sizes._asdict(), "ok": self.ok, "loss_diff": self.loss_diff, "grad_diff": self.grad_diff,
            "tolerances": {"grad_rtol": TOLERANCES[self.dtype][0], "loss_rtol": TOLERANCES[self.dtype][1],
                           "loss_floor": LOSS_FLOOR},
            "torch_ms_per_step": 1e3 * self.torch_seconds / self.steps,
            "jax_ms_per_step": 1e3 * self.jax_seconds / self.steps,
            "torch_ms_per_step_runs": [1e3 * s / self.steps for s in self.torch_runs],
            "jax_ms_per_step_runs": [1e3 * s / self.steps for s in self.jax_runs],
            "torch_threads_tried_seconds": {str(k): list(v) for k, v in self.torch_threads_tried.items()},
            "jax_compile_seconds": self.jax_compile_seconds, "torch_threads": self.torch_threads,
            "torch_losses": self.torch_losses.tolist(), "jax_losses": self.jax_losses.tolist(),
        }


def compare(
    lesson_id: str, *, steps: int | None = None, seed: int = 0, sizes=None, perturb: float = 0.0, x64: bool = False,
    repeats: int = 0,
) -> Comparison:
    """Train ``lesson_id`` in PyTorch and in fnnet from the same weights and data, and compare.

    The start is drawn as the tutorial draws it (``torch.manual_seed(seed)``,
    ``randn`` data, torch's own init; NumPy's generator for ``numpy``) and given
    to fnnet through ``from_torch`` and ``fit(params=..., data=...)``.

    Args:
      lesson_id: a key of ``fnnet.LESSONS``.
      steps: training steps (default 500).
      seed: seeds the start and, for ``control_flow``, the depth schedule.
      sizes: ``Sizes`` (default the tutorial's).
      perturb: scale fnnet's starting weights by ``1 + perturb``, to see the
        check fail (0 for a real comparison).
      x64: run both sides in float64 instead of the tutorial's float32.
      repeats: timed rounds after the parity run (0: report the parity run's
        time, run with one torch and one BLAS thread). PyTorch's thread count
        (and BLAS's, for the numpy lesson) is first chosen as the faster of 1
        and every core on short runs; then each round runs PyTorch and fnnet
        once, alternating which goes first; ms/step is the median of the rounds.

    Examples:
      >>> c = compare("autograd", steps=20, sizes=(8, 20, 10, 3))
      >>> c.ok, c.grad_diff < 1e-5
      (True, True)
    """
    lesson = get_lesson(lesson_id)
    steps = DEFAULT_STEPS if steps is None else check_steps(steps)  # bounded like fit's (issue 14)
    sizes = Sizes() if sizes is None else check_sizes(sizes)
    check_memory(sizes, runs=2, steps=steps)  # torch's run and fnnet's, refused before allocating (issue 14)
    check_seed(seed)
    if not np.isfinite(perturb):
        raise ConfigError(f"perturb must be a finite number, got {perturb}")
    torch = _torch()
    from fnnet import torch_ref

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 0:
        raise ConfigError(f"repeats must be a non-negative integer, got {repeats!r}")
    # The parity run gives torch and NumPy's BLAS one thread: at the tutorial's sizes more do not help, and on
    # a busy machine oversubscribed threads made a run 10-100x slower. The timed rounds choose between 1 and all.
    from threadpoolctl import threadpool_limits

    cores = os.cpu_count() or 1
    threads = 1
    torch.set_num_threads(threads)
    start, x, y = torch_ref.initial(lesson.id, sizes, seed)
    if x64 and lesson.id != "numpy":  # the numpy lesson is float64 already
        start = start.double() if isinstance(start, torch.nn.Module) else {k: v.double() for k, v in start.items()}
        x, y = x.double(), y.double()
    params = from_torch(lesson.id, start)  # taken before torch trains (and changes) the module
    params = jax.tree.map(lambda a: a * (1 + perturb), params)
    x_np, y_np = _numpy(x), _numpy(y)
    dtype = "float64" if x64 or lesson.backend == "numpy" else "float32"

    with jax.enable_x64(x64):
        depths = depth_schedule(seed, steps) if lesson.id == "control_flow" else None
        extra = {"depths": depths} if depths is not None else {}
        start0 = copy.deepcopy(start)  # the reference trains `start` in place
        run_ours = lambda: fit(
            lesson.id, steps=steps, seed=seed, sizes=sizes, params=params, data=(x_np, y_np),
            progress=False, dtype="float64" if x64 else "float32",
        )
        with threadpool_limits(threads):
            ref = torch_ref.RUNS[lesson.id](start, x, y, steps=steps, lr=lesson.lr, **extra)
            ours = run_ours()
        result = from_runs(lesson.id, ref, ours, params, (x_np, y_np), seed=seed, threads=threads)
        if not repeats:
            return result

        def run_ref(k, n=steps):
            torch.set_num_threads(k)
            with threadpool_limits(k):  # the numpy lesson's reference is NumPy
                return torch_ref.RUNS[lesson.id](copy.deepcopy(start0), x, y, steps=n, lr=lesson.lr, **extra).seconds

        def run_jax():
            with threadpool_limits(best):  # XLA keeps its own pool; this is for the numpy lesson's BLAS
                return run_ours().run_seconds

        # threads: the faster of 1 and every core, on short runs (oversubscribed torch threads on a busy
        # machine can be 100x slower, so the long runs are spent only on the winner)
        short = min(steps, 50)
        tried = {k: [] for k in sorted({1, cores})}
        for r in range(3):
            for k in (list(tried) if r % 2 else list(tried)[::-1]):
                tried[k].append(run_ref(k, short))
        best = min(tried, key=lambda k: statistics.median(tried[k][1:]))  # the first round warms up
        torch_runs, jax_runs = [], []
        for r in range(repeats):
            pair = [lambda: torch_runs.append(run_ref(best)), lambda: jax_runs.append(run_jax())]
            for run in pair if r % 2 == 0 else pair[::-1]:
                run()
        torch.set_num_threads(threads)  # as the parity run left it
        return dataclasses.replace(
            result, torch_seconds=statistics.median(torch_runs), jax_seconds=statistics.median(jax_runs),
            torch_threads=best, torch_runs=tuple(torch_runs), jax_runs=tuple(jax_runs),
            torch_threads_tried={k: tuple(v[1:]) for k, v in tried.items()})


def start_gradients(lesson_id: str, params, data, *, seed: int = 0, dtype: str | None = None) -> dict:
    """fnnet's gradients at ``params`` on ``data`` for the step-0 key of ``seed``, named and laid out as torch's.

    Examples:
      >>> import torch
      >>> start, x, y = __import__("fnnet.torch_ref").torch_ref.initial("nn", Sizes(4, 6, 5, 2), 0)
      >>> sorted(start_gradients("nn", from_torch("nn", start), (x.numpy(), y.numpy())))
      ['0.bias', '0.weight', '2.bias', '2.weight']
    """
    lesson = get_lesson(lesson_id)
    x, y = data
    sizes = Sizes(np.shape(x)[0], np.shape(x)[1], sizes_of(lesson.id, params)["hidden"], np.shape(y)[1])
    fns = lesson_functions(lesson.id, sizes)
    key0 = None if lesson.backend == "numpy" else step_key(run_keys(seed).train, 0)
    _, grads = fns.grad_fn(to_backend(params, lesson.backend, dtype), to_backend((x, y), lesson.backend, dtype), key0)
    return torch_named(grads)


def from_runs(lesson_id: str, ref, ours, params, data, *, seed: int = 0, threads: int | None = None) -> Comparison:
    """A ``Comparison`` of a reference run (``fnnet.torch_ref``) and an ``fnnet.fit`` result from the same start.

    ``params`` and ``data`` are the start both were given (fnnet's structure).
    """
    lesson = get_lesson(lesson_id)
    dtype = ours.config.get("dtype", "float32")
    grads = start_gradients(lesson.id, params, data, seed=seed, dtype=dtype if lesson.backend == "jax" else None)
    sizes = Sizes(**ours.config["sizes"])
    torch = _torch()
    return Comparison(
        lesson.id, len(ours.losses), seed, sizes, np.asarray(ref.losses, np.float64),
        np.asarray(ours.losses, np.float64), ref.grads, grads, ref.seconds, ours.run_seconds,
        ours.compile_seconds, threads or torch.get_num_threads(), dtype,
    )


@dataclasses.dataclass(frozen=True)
class Check:
    """The verdict on one lesson: its float32 comparison and, when that drifted, the float64 one."""

    f32: Comparison
    f64: Comparison | None = None

    @property
    def ok(self) -> bool:
        return self.f32.ok or (self.f32.grads_ok and self.f64 is not None and self.f64.ok)

    @property
    def verdict(self) -> str:
        if self.f32.ok:
            return "ok"
        if self.ok:
            return "ok (float32 drift; float64 agrees)"
        return "FAIL"

    def record(self) -> dict:
        doc = self.f32.record()
        doc.update(verdict=self.verdict, ok=self.ok, float64=None if self.f64 is None else self.f64.record())
        return doc


def check(lesson_id: str, *, x64: bool = False, repeats: int = 0, **kwargs) -> Check:
    """Compare a lesson in float32; if only its curves drift apart, settle it in float64.

    With ``x64=True`` the comparison is made in float64 alone.

    Examples:
      >>> check("tensors", steps=10, sizes=(8, 20, 10, 3)).verdict
      'ok'
    """
    first = compare(lesson_id, x64=x64, repeats=repeats, **kwargs)
    if first.ok or x64 or first.dtype == "float64" or not first.grads_ok:
        return Check(first)
    return Check(first, compare(lesson_id, x64=True, **kwargs))  # the verdict only: not timed again


def check_all(lesson_ids=None, **kwargs) -> list[Check]:
    """``check`` for several lessons (default: all eight)."""
    return [check(lesson_id, **kwargs) for lesson_id in (lesson_ids or list(LESSONS))]
