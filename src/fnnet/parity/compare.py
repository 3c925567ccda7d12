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
from fnnet.lessons import LESSONS, edition_ids, get_lesson, lesson_functions, sizes_of, to_backend
from fnnet.lessons.modules import draw_depth
from fnnet.training.fit import DEFAULT_STEPS, fit, step_key

GRAD_RTOL = 1e-5
LOSS_RTOL = 1e-3
GRAD_RTOL_64 = 1e-10
LOSS_RTOL_64 = 1e-9
LOSS_FLOOR = 1e-6  # losses below this fraction of the first are not compared
CHAOTIC = ("sine_optim",)  # lessons whose curves are compared one by one only up to their predictability horizon
HORIZON_MARGIN = 50  # steps before the horizon where the one-by-one comparison stops
TAIL = 200  # the last steps, whose mean loss both sides must share when the curves cannot match one by one
TAIL_RTOL = 0.02  # measured: at most 0.2% over seeds 0-3
TOLERANCES = {"float32": (GRAD_RTOL, LOSS_RTOL), "float64": (GRAD_RTOL_64, LOSS_RTOL_64)}


def _torch():
    from fnnet.parity.torch_ref import require_torch

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
        (hidden, d_out)); for the sine edition's scalar lessons
        ``{"a", "b", "c", "d"}`` or ``(a, b, c, d)``; for the module lessons
        of either edition, the torch module.

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
    if lesson.model in ("cubic", "legendre3"):  # the sine edition's scalars a, b, c, d
        if isinstance(source, Mapping) and set(source) == set("abcd"):
            return {k: _numpy(source[k]) for k in "abcd"}
        if isinstance(source, (tuple, list)) and len(source) == 4:
            return {k: _numpy(v) for k, v in zip("abcd", source)}
        raise ConfigError(f"lesson {lesson_id!r} takes scalars {{'a', 'b', 'c', 'd'}} or (a, b, c, d), "
                          f"got {type(source).__name__}")
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
    from fnnet.parity.torch_ref import MODULES

    named = {name: torch.from_numpy(np.array(a, copy=True)) for name, a in torch_named(params).items()}
    if lesson.model.startswith("weights") or lesson.model in ("cubic", "legendre3"):
        return named
    if lesson.edition == "sine":  # fixed shapes: the module needs no sizes
        return _load(MODULES[lesson_id](), named, lesson_id)
    weights = [tuple(a.shape) for name, a in named.items() if name.endswith("weight") and a.ndim == 2]
    if not weights:
        raise ConfigError(f"params hold no weight matrix for lesson {lesson_id!r}")
    module = MODULES[lesson_id](Sizes(1, weights[0][1], weights[0][0], weights[-1][0]))  # torch's (out, in) layout
    return _load(module, named, lesson_id)


def _load(module, named: dict, lesson_id: str):
    try:
        module.load_state_dict(named, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"params do not fit lesson {lesson_id!r}'s torch module: {first}") from None
    return module


def depth_schedule(seed: int, steps: int, lesson: str = "control_flow") -> np.ndarray:
    """DynamicNet's choice at each step of ``fit(lesson, seed=seed)``, for PyTorch to replay.

    For ``control_flow`` the number of times the middle layer is reused (0..3);
    for ``sine_control_flow`` the number of extra terms e x^4, e x^5 (0..2).

    Examples:
      >>> depth_schedule(0, 8).shape
      (8,)
      >>> set(depth_schedule(0, 300, lesson="sine_control_flow").tolist())
      {0, 1, 2}
    """
    if lesson not in ("control_flow", "sine_control_flow"):
        raise ConfigError(f"depth_schedule is for control_flow or sine_control_flow, got {lesson!r}")
    from fnnet.lessons.modules import draw_extra_terms

    draw = draw_depth if lesson == "control_flow" else draw_extra_terms
    train_key = run_keys(seed).train
    return np.asarray(jax.vmap(lambda t: draw(step_key(train_key, t)))(np.arange(steps)))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One lesson run in PyTorch and in fnnet from the same start."""

    lesson: str
    steps: int
    seed: int
    sizes: Sizes | None  # None for the sine edition (fixed data)
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
    horizon: int | None = None  # a chaotic lesson's predictability horizon (``predictability_horizon``)
    torch_params: dict | None = None  # the trained parameters by torch name, when the reference returns them
    jax_params: dict | None = None  # fnnet's, by the same names

    @property
    def exact_steps(self) -> int:
        """The steps compared one by one: all of them, or up to HORIZON_MARGIN before a chaotic lesson's horizon."""
        return self.steps if self.horizon is None else max(1, min(self.steps, self.horizon - HORIZON_MARGIN))

    @property
    def tail_diff(self) -> float:
        """|mean torch - mean jax| / mean torch over the last TAIL steps (0.0 when every step was compared)."""
        if self.exact_steps >= self.steps:
            return 0.0
        t, j = self.torch_losses[-TAIL:].mean(), self.jax_losses[-TAIL:].mean()
        return float(abs(t - j) / t)

    @property
    def loss_diff(self) -> float:
        """Worst |torch - jax| / torch over the first ``exact_steps`` steps whose torch loss is above LOSS_FLOOR of the first."""
        t, j = self.torch_losses[: self.exact_steps], self.jax_losses[: self.exact_steps]
        keep = t > LOSS_FLOOR * t[0]
        return float(np.max(np.abs(t[keep] - j[keep]) / t[keep])) if keep.any() else 0.0

    @property
    def grad_diff(self) -> float:
        """Worst over parameters of max|torch - jax| / max|torch| of the step-0 gradient.

        A scalar parameter (the sine edition's a, b, c, d) has no entries of its
        own to set a scale, so it is measured against the largest gradient of
        the step: in ``sine_custom_function`` the exact gradients of a and c are
        0 at the start (an odd model on odd data), and each side's is float32
        rounding noise of a 2000-term sum (~1e-5 against d's ~7e3).
        """
        worst = 0.0
        overall = max((float(np.max(np.abs(g))) for g in self.torch_grads.values()), default=1.0)
        for name, g in self.torch_grads.items():
            scale = (overall if np.ndim(g) == 0 else np.max(np.abs(g))) or 1.0
            worst = max(worst, float(np.max(np.abs(g - self.jax_grads[name])) / scale))
        return worst

    @property
    def grads_ok(self) -> bool:
        return self.grad_diff <= TOLERANCES[self.dtype][0]

    @property
    def losses_ok(self) -> bool:
        return self.loss_diff <= TOLERANCES[self.dtype][1] and self.tail_diff <= TAIL_RTOL

    @property
    def ok(self) -> bool:
        return self.grads_ok and self.losses_ok

    def record(self) -> dict:
        """A JSON-ready summary (losses in full, gradients as their differences)."""
        return {
            "lesson": self.lesson, "dtype": self.dtype, "steps": self.steps, "seed": self.seed,
            "sizes": None if self.sizes is None else self.sizes._asdict(), "exact_steps": self.exact_steps, "horizon": self.horizon,
            "tail_diff": self.tail_diff, "ok": self.ok, "loss_diff": self.loss_diff, "grad_diff": self.grad_diff,
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
      steps: training steps (default: the lesson's, 500 classic, 2000 sine, 30000 sine_control_flow).
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
    steps = None if steps is None else check_steps(steps)  # bounded like fit's (issue 14)
    sine = lesson.edition == "sine"
    if sine:
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
    if x64 and lesson.backend != "numpy":  # the NumPy lessons are float64 already
        start = start.double() if isinstance(start, torch.nn.Module) else {k: v.double() for k, v in start.items()}
        x, y = x.double(), y.double()
    params = from_torch(lesson.id, start)  # taken before torch trains (and changes) the module
    params = jax.tree.map(lambda a: a * (1 + perturb), params)
    x_np, y_np = _numpy(x), _numpy(y)
    if sine:  # the tutorial's (2000,) vectors as fnnet's (rows, 1) columns; the features are (2000, 3) already
        x_np, y_np = x_np.reshape(len(x_np), -1), y_np[:, None]
    dtype = "float64" if x64 or lesson.backend == "numpy" else "float32"

    with jax.enable_x64(x64):
        depths = depth_schedule(seed, steps, lesson.id) if lesson.id.endswith("control_flow") else None
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
        if lesson.id in CHAOTIC:
            horizon = predictability_horizon(lesson.id, params, (x_np, y_np), ours.losses, seed=seed,
                                             dtype="float64" if x64 else "float32")
            result = dataclasses.replace(result, horizon=horizon)
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


def predictability_horizon(lesson_id: str, params, data, losses, *, seed: int = 0, dtype: str = "float32") -> int | None:
    """The first step where a one-rounding-error change of the start alone moves fnnet's loss by LOSS_RTOL.

    ``sine_optim`` (RMSprop at lr 1e-3) is chaotic once it nears its floor:
    rounding differences grow a hundredfold in a few steps, in float64 as in
    float32, so no two implementations (nor one with its start scaled by
    ``1 +- eps``, eps the dtype's rounding error) follow the same curve past a
    point that depends on the seed. That point is measured here: ``losses`` (a
    run from ``params``) against runs from ``params * (1 + eps)`` and
    ``params * (1 - eps)``; None if neither leaves it.
    """
    eps = float(np.finfo(dtype).eps)
    horizon = None
    for sign in (1, -1):
        start = jax.tree.map(lambda a: (np.asarray(a) * (1 + sign * eps)).astype(dtype), params)
        moved = fit(lesson_id, steps=len(losses), seed=seed, params=start, data=data, progress=False, dtype=dtype).losses
        apart = np.abs(moved - losses) > TOLERANCES["float32"][1] * np.abs(losses)
        if apart.any():
            horizon = int(np.argmax(apart)) if horizon is None else min(horizon, int(np.argmax(apart)))
    return horizon


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
    sizes = None if lesson.edition == "sine" else Sizes(np.shape(x)[0], np.shape(x)[1],
                                                         sizes_of(lesson.id, params)["hidden"], np.shape(y)[1])
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
    sizes = None if ours.config["sizes"] is None else Sizes(**ours.config["sizes"])
    torch = _torch()
    return Comparison(
        lesson.id, len(ours.losses), seed, sizes, np.asarray(ref.losses, np.float64),
        np.asarray(ours.losses, np.float64), ref.grads, grads, ref.seconds, ours.run_seconds,
        ours.compile_seconds, threads or torch.get_num_threads(), dtype,
        torch_params=getattr(ref, "params", None), jax_params=torch_named(ours.params),
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
    """``check`` for several lessons (default: the eight of the classic edition)."""
    return [check(lesson_id, **kwargs) for lesson_id in (lesson_ids or edition_ids("classic"))]
