"""The tutorial's second edition: fitting y = sin(x) on [-pi, pi] with a cubic polynomial.

Since December 2020 pytorch.org teaches "Learning PyTorch with Examples" on this
problem. The data is fixed (``sine_data``: 2000 evenly spaced points and their
sines), the loss is the sum of squared errors, and the model is a polynomial
whose coefficients are the parameters. This module holds the edition's pure
models (``Cubic``, ``Legendre3``), its data, and how a fitted model is read
back as the tutorial prints it (``coefficients``, ``result_line``, ``curve``);
its flax modules (``Polynomial3``, ``SineDynamicNet``) live in
``fnnet.modules`` with the other ``nnx.Module`` lessons.

Parameter names follow the tutorial: ``a + b x + c x^2 + d x^3`` (and ``e`` for
DynamicNet's shared x^4 and x^5 coefficient). For ``sine_nn``/``sine_optim``
the model is a ``Linear(3, 1)`` over the features ``(x, x^2, x^3)``: its bias is
``a`` and its weights are ``b, c, d``.

Examples:
  >>> x, y = sine_data()
  >>> x.shape, y.shape, x.dtype
  ((2000, 1), (2000, 1), dtype('float32'))
  >>> result_line("sine_autograd", {"a": 0.0, "b": 0.857, "c": 0.0, "d": -0.093})
  'Result: y = 0.0 + 0.857 x + 0.0 x^2 + -0.093 x^3'
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

ROWS = 2000  # the tutorial's linspace(-pi, pi, 2000)
POWERS = (1, 2, 3)  # the features of sine_nn / sine_optim: x.unsqueeze(-1).pow(p)
LEGENDRE_START = {"a": 0.0, "b": -1.0, "c": 0.0, "d": 0.3}  # the tutorial's start for the custom-function lesson


def sine_data(dtype=np.float32, *, features: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's data: ``x = linspace(-pi, pi, 2000)`` and ``y = sin(x)``, as (2000, 1) columns.

    With ``features`` x is ``(x, x^2, x^3)``, (2000, 3): what ``sine_nn`` and
    ``sine_optim`` feed their ``Linear(3, 1)``. The grid and the sines are
    computed in float64 and then cast to ``dtype``.

    Examples:
      >>> x, y = sine_data(np.float64)
      >>> float(x[0, 0]), float(x[-1, 0]), bool(np.allclose(y, np.sin(x)))
      (-3.141592653589793, 3.141592653589793, True)
      >>> sine_data(features=True)[0].shape
      (2000, 3)
    """
    x = np.linspace(-math.pi, math.pi, ROWS)[:, None]
    y = np.sin(x)
    if features:
        x = x ** np.array(POWERS, dtype=np.float64)
    return x.astype(dtype), y.astype(dtype)


def _cubic(params, x):
    a, b, c, d = params["a"], params["b"], params["c"], params["d"]
    return a + b * x + c * x**2 + d * x**3


@dataclasses.dataclass(frozen=True)
class Cubic:
    """``y = a + b x + c x^2 + d x^3`` with four scalar parameters drawn from a standard normal.

    Plain arithmetic only, so it runs on NumPy arrays (the ``sine_numpy``
    lesson, float64) as well as under ``jit``. ``manual_grads`` is the
    tutorial's backward written out by hand.

    Examples:
      >>> model = Cubic()
      >>> params = model.init(jax.random.key(0))
      >>> sorted(params), model.apply(params, jnp.ones((5, 1))).shape
      (['a', 'b', 'c', 'd'], (5, 1))
    """

    def init(self, key: jax.Array) -> dict:
        a, b, c, d = jax.random.normal(key, (4,))
        return {"a": a, "b": b, "c": c, "d": d}

    def apply(self, params: dict, x: Float[Array, "rows 1"], key=None) -> Float[Array, "rows 1"]:
        del key
        return _cubic(params, x)

    def manual_grads(self, params: dict, x, y):
        """``(loss, grads)`` by the chain rule written out, as the tutorial's first two steps do.

        Examples:
          >>> params = {k: jnp.float32(v) for k, v in zip("abcd", (0.1, 0.2, 0.3, 0.4))}
          >>> x, y = sine_data()
          >>> loss, grads = Cubic().manual_grads(params, x, y)
          >>> auto = jax.grad(lambda p: ((Cubic().apply(p, x) - y) ** 2).sum())(params)
          >>> all(bool(jnp.allclose(grads[k], auto[k], rtol=1e-5)) for k in "abcd")
          True
        """
        y_pred = _cubic(params, x)
        loss = ((y_pred - y) ** 2).sum()
        grad_y_pred = 2.0 * (y_pred - y)
        grads = {
            "a": grad_y_pred.sum(),
            "b": (grad_y_pred * x).sum(),
            "c": (grad_y_pred * x**2).sum(),
            "d": (grad_y_pred * x**3).sum(),
        }
        return loss, grads


@jax.custom_vjp
def legendre_p3(z: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """The Legendre polynomial of degree three, ``P3(z) = (5 z^3 - 3 z) / 2``, with a hand-written backward.

    The JAX counterpart of the tutorial's ``LegendrePolynomial3(torch.autograd.Function)``:
    the forward saves its input as the residual (``ctx.save_for_backward``) and
    the backward returns ``g * 1.5 (5 z^2 - 1)``.

    Examples:
      >>> float(legendre_p3(jnp.float32(1.0))), float(jax.grad(legendre_p3)(jnp.float32(1.0)))
      (1.0, 6.0)
    """
    return 0.5 * (5 * z**3 - 3 * z)


def _p3_forward(z):
    return legendre_p3(z), z  # the input is what the backward needs


def _p3_backward(z, g):
    return (g * 1.5 * (5 * z**2 - 1),)


legendre_p3.defvjp(_p3_forward, _p3_backward)


@dataclasses.dataclass(frozen=True)
class Legendre3:
    """``y = a + b * P3(c + d x)``, starting where the tutorial does: a=0, b=-1, c=0, d=0.3 (the key is unused).

    Examples:
      >>> model = Legendre3()
      >>> params = model.init(jax.random.key(0))
      >>> float(params["b"]), model.apply(params, jnp.zeros((3, 1))).tolist()
      (-1.0, [[0.0], [0.0], [0.0]])
    """

    def init(self, key: jax.Array) -> dict:
        del key
        return {name: jnp.float32(value) for name, value in LEGENDRE_START.items()}

    def apply(self, params: dict, x: Float[Array, "rows 1"], key=None) -> Float[Array, "rows 1"]:
        del key
        return params["a"] + params["b"] * legendre_p3(params["c"] + params["d"] * x)


def coefficients(lesson_id: str, params) -> dict[str, float]:
    """The fitted coefficients ``{"a", "b", "c", "d"}`` (and ``"e"``) as floats, from any sine lesson's params.

    ``params`` is fnnet's structure, or the same under PyTorch's names
    (``{"0.weight", "0.bias"}`` for the Linear lessons).

    Examples:
      >>> coefficients("sine_nn", {"layers": {0: {"bias": np.array([0.5]), "kernel": np.array([[1.0], [2.0], [3.0]])}}})
      {'a': 0.5, 'b': 1.0, 'c': 2.0, 'd': 3.0}
    """
    if lesson_id in ("sine_nn", "sine_optim") and "0.weight" in params:  # torch's names (fnnet.compare.torch_named)
        params = {"layers": {0: {"kernel": np.asarray(params["0.weight"]).T, "bias": params["0.bias"]}}}
    if lesson_id in ("sine_nn", "sine_optim"):
        linear = params["layers"][0]
        weights = np.asarray(linear["kernel"]).reshape(-1)
        return {"a": float(np.asarray(linear["bias"]).reshape(-1)[0]), "b": float(weights[0]),
                "c": float(weights[1]), "d": float(weights[2])}
    return {name: float(np.asarray(params[name])) for name in "abcde" if name in params}


def result_line(lesson_id: str, params) -> str:
    """The line the tutorial prints at the end: ``Result: y = a + b x + c x^2 + d x^3`` with the fitted numbers.

    ``sine_custom_function`` prints ``a + b * P3(c + d x)``, and DynamicNet adds
    ``+ e x^4 ? + e x^5 ?`` (the extra terms are there on some steps only).

    Examples:
      >>> result_line("sine_custom_function", {"a": 0.0, "b": -1.0, "c": 0.0, "d": 0.3})
      'Result: y = 0.0 + -1.0 * P3(0.0 + 0.3 x)'
    """
    k = coefficients(lesson_id, params)
    if lesson_id == "sine_custom_function":
        return f"Result: y = {k['a']} + {k['b']} * P3({k['c']} + {k['d']} x)"
    line = f"Result: y = {k['a']} + {k['b']} x + {k['c']} x^2 + {k['d']} x^3"
    if "e" in k:
        line += f" + {k['e']} x^4 ? + {k['e']} x^5 ?"
    return line


def curve(lesson_id: str, params, x) -> np.ndarray:
    """The fitted function at points ``x`` (any shape), in float64 NumPy: what ``--plot`` draws beside sin(x).

    DynamicNet's extra terms appear on some steps only; the curve leaves them
    out (the fitted ``e`` is near zero, see the lesson).

    Examples:
      >>> float(curve("sine_autograd", {"a": 1.0, "b": 2.0, "c": 0.0, "d": 0.0}, np.array([3.0]))[0])
      7.0
    """
    k = coefficients(lesson_id, params)
    x = np.asarray(x, np.float64)
    if lesson_id == "sine_custom_function":
        z = k["c"] + k["d"] * x
        return k["a"] + k["b"] * 0.5 * (5 * z**3 - 3 * z)
    return k["a"] + k["b"] * x + k["c"] * x**2 + k["d"] * x**3


def printed_losses(losses, every: int = 100) -> list[tuple[int, float]]:
    """The ``(t, loss)`` pairs the tutorial prints: every step with ``t % every == every - 1``.

    Examples:
      >>> printed_losses(np.arange(250.0))
      [(99, 99.0), (199, 199.0)]
    """
    return [(t, float(losses[t])) for t in range(every - 1, len(losses), every)]


__all__ = ["ROWS", "Cubic", "Legendre3", "coefficients", "curve", "legendre_p3", "printed_losses", "result_line",
           "sine_data"]
