"""The one comparison: when two codings of a lesson, run from one start, compute the same thing.

``fnnet.compare`` (the library against the tutorial's PyTorch) and the pages' proof (a page's two program
cells) both judge with what is here: a ``Comparison`` of two loss curves and two sets of first-step
gradients (or first updates) is ``ok`` within the tolerances below; ``settle`` reruns a float32 pair whose
curves drifted apart in float64, where the verdict (``Check``) is made; ``horizon`` measures where a
chaotic lesson's curves stop being comparable step by step, after which only the mean of the last ``TAIL``
losses is compared. ``torch_name`` maps an fnnet parameter path to PyTorch's name and layout.

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
the pair is run again in float64 on both sides, where nothing is lost
to rounding: there the curves must agree to ``LOSS_RTOL_64 = 1e-9`` (they do to
~1e-13) and the gradients to ``GRAD_RTOL_64 = 1e-10``. A real difference in what
the two sides compute shows in float64 as plainly as in float32. The pages'
proof compares first updates, always in float64 (``UPDATE_RTOL``, the same
1e-10): a ``Comparison`` says in which dtype its gradients were taken
(``grads_dtype``), and that dtype's tolerance applies.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np

from fnnet.data import Sizes

GRAD_RTOL = 1e-5
LOSS_RTOL = 1e-3
GRAD_RTOL_64 = 1e-10
LOSS_RTOL_64 = 1e-9
UPDATE_RTOL = GRAD_RTOL_64  # the pages' first updates, both sides in float64
LOSS_FLOOR = 1e-6  # losses below this fraction of the first are not compared
HORIZON_MARGIN = 50  # steps before the horizon where the one-by-one comparison stops
TAIL = 200  # the last steps, whose mean loss both sides must share when the curves cannot match one by one
TAIL_RTOL = 0.02  # measured: at most 0.2% over seeds 0-3
TOLERANCES = {"float32": (GRAD_RTOL, LOSS_RTOL), "float64": (GRAD_RTOL_64, LOSS_RTOL_64)}
"""dtype -> (gradient tolerance, loss-curve tolerance)."""


def torch_name(path) -> tuple[str, bool]:
    """PyTorch's name for the fnnet parameter at ``path`` (a pytree key path), and whether to transpose it.

    Examples:
      >>> torch_name(("layers", 0, "kernel"))
      ('0.weight', True)
      >>> torch_name(("linear1", "bias")), torch_name(("w1",))
      (('linear1.bias', False), ('w1', False))
    """
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
        name, transpose = torch_name(path)
        leaf = np.asarray(leaf)
        named[name] = leaf.T if transpose else leaf
    return named


def first_update(before: dict, after: dict, lr: float) -> dict[str, np.ndarray]:
    """``(before - after) / lr`` per parameter: the step-0 gradient for SGD and momentum, ``g / (|g| + eps)`` for Adam.

    Examples:
      >>> first_update({"w": np.array([1.0, 2.0])}, {"w": np.array([0.5, 2.0])}, 0.5)
      {'w': array([1., 0.])}
    """
    return {k: (np.asarray(before[k], np.float64) - np.asarray(after[k], np.float64)) / lr for k in before}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One lesson run by two codings from the same start: the reference (``torch_*``) and fnnet's (``jax_*``)."""

    lesson: str
    steps: int
    seed: int
    sizes: Sizes | None  # None for the sine edition (fixed data)
    torch_losses: np.ndarray
    jax_losses: np.ndarray
    torch_grads: dict  # step-0 gradients (or first updates / lr) by torch parameter name
    jax_grads: dict  # the same names and layout
    torch_seconds: float  # median over the timed runs (the parity run alone when there are none)
    jax_seconds: float  # run time, compile excluded; median as above
    jax_compile_seconds: float
    torch_threads: int
    dtype: str = "float32"
    torch_runs: tuple = ()  # seconds of each timed run, with torch_threads threads
    jax_runs: tuple = ()
    torch_threads_tried: dict = dataclasses.field(default_factory=dict)  # threads -> seconds of short runs
    horizon: int | None = None  # a chaotic lesson's predictability horizon (``horizon``)
    torch_params: dict | None = None  # the trained parameters by torch name, when the reference returns them
    jax_params: dict | None = None  # fnnet's, by the same names
    grads_dtype: str | None = None  # the dtype the gradients were taken in (None: ``dtype``)

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
    def grad_rtol(self) -> float:
        """The gradient tolerance: that of the dtype the gradients were taken in."""
        return TOLERANCES[self.grads_dtype or self.dtype][0]

    @property
    def loss_rtol(self) -> float:
        """The loss-curve tolerance of the curves' dtype."""
        return TOLERANCES[self.dtype][1]

    @property
    def grads_ok(self) -> bool:
        return self.grad_diff <= self.grad_rtol

    @property
    def losses_ok(self) -> bool:
        return self.loss_diff <= self.loss_rtol and self.tail_diff <= TAIL_RTOL

    @property
    def ok(self) -> bool:
        return self.grads_ok and self.losses_ok

    def summary(self) -> str:
        """One line of the numbers the verdict rests on.

        Examples:
          >>> c = Comparison("nn", 3, 0, None, np.array([4.0, 2, 1]), np.array([4.0, 2, 1.5]), {"w": np.ones(2)},
          ...                {"w": np.ones(2)}, 0.0, 0.0, 0.0, 1, "float64")
          >>> c.summary()
          'float64, 3 steps: loss diff 5.0e-01 (tolerance 1e-09), gradient diff 0.0e+00 (tolerance 1e-10): FAIL'
        """
        return (f"{self.dtype}, {self.steps} steps: loss diff {self.loss_diff:.1e} (tolerance {self.loss_rtol:.0e}), "
                f"gradient diff {self.grad_diff:.1e} (tolerance {self.grad_rtol:.0e})"
                + ("" if self.exact_steps >= self.steps else f", tail diff {self.tail_diff:.1e} "
                   f"(tolerance {TAIL_RTOL}, chaotic after {self.horizon})")
                + (": ok" if self.ok else ": FAIL"))

    def record(self) -> dict:
        """A JSON-ready summary (losses in full, gradients as their differences)."""
        return {
            "lesson": self.lesson, "dtype": self.dtype, "steps": self.steps, "seed": self.seed,
            "sizes": None if self.sizes is None else self.sizes._asdict(), "exact_steps": self.exact_steps, "horizon": self.horizon,
            "tail_diff": self.tail_diff, "ok": self.ok, "loss_diff": self.loss_diff, "grad_diff": self.grad_diff,
            "tolerances": {"grad_rtol": self.grad_rtol, "loss_rtol": self.loss_rtol, "loss_floor": LOSS_FLOOR},
            "torch_ms_per_step": 1e3 * self.torch_seconds / self.steps,
            "jax_ms_per_step": 1e3 * self.jax_seconds / self.steps,
            "torch_ms_per_step_runs": [1e3 * s / self.steps for s in self.torch_runs],
            "jax_ms_per_step_runs": [1e3 * s / self.steps for s in self.jax_runs],
            "torch_threads_tried_seconds": {str(k): list(v) for k, v in self.torch_threads_tried.items()},
            "jax_compile_seconds": self.jax_compile_seconds, "torch_threads": self.torch_threads,
            "torch_losses": self.torch_losses.tolist(), "jax_losses": self.jax_losses.tolist(),
        }


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


def needs_float64(first: Comparison) -> bool:
    """The float64 rule: a float32 pair whose step-0 gradients agree but whose curves drift is run again in float64."""
    return not first.ok and first.dtype != "float64" and first.grads_ok


def settle(run: Callable[[bool], Comparison]) -> Check:
    """``run(False)`` (the pair in its own precision), and ``run(True)`` (in float64) when ``needs_float64``.

    Examples:
      >>> def run(wide):
      ...     far = 0.0 if wide else 0.01  # float32 drift, gone in float64
      ...     return Comparison("nn", 2, 0, None, np.array([2.0, 1.0]), np.array([2.0, 1.0 + far]),
      ...                       {"w": np.ones(1)}, {"w": np.ones(1)}, 0.0, 0.0, 0.0, 1,
      ...                       "float64" if wide else "float32")
      >>> settle(run).verdict
      'ok (float32 drift; float64 agrees)'
    """
    first = run(False)
    return Check(first, run(True)) if needs_float64(first) else Check(first)


def horizon(losses: np.ndarray, run_from: Callable[[float], np.ndarray], dtype: str) -> int | None:
    """The first step where a run from the start scaled by ``1 +- eps`` leaves ``losses`` by LOSS_RTOL.

    ``run_from(factor)`` trains the same coding from its start times ``factor``
    for ``len(losses)`` steps; eps is ``dtype``'s rounding error. A lesson whose
    rounding differences grow without bound (``Lesson.chaotic``) has no
    step-by-step agreement past this point in any pair of codings. None if
    neither run leaves ``losses``.

    Examples:
      >>> horizon(np.ones(5), lambda f: np.array([1, 1, 1, 1 + 1e5 * (f - 1), 1]), "float32")
      3
      >>> print(horizon(np.ones(5), lambda f: np.ones(5), "float32"))
      None
    """
    eps, found = float(np.finfo(dtype).eps), None
    for sign in (1, -1):
        moved = np.asarray(run_from(1 + sign * eps))
        apart = np.abs(moved - losses) > LOSS_RTOL * np.abs(losses)
        if apart.any():
            found = int(np.argmax(apart)) if found is None else min(found, int(np.argmax(apart)))
    return found
