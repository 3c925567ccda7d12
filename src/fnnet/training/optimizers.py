"""The update rules the lessons use, each a ``learning_rate -> optax.GradientTransformation``.

``sgd-by-hand`` is the tutorial's ``param -= learning_rate * param.grad`` loop
written as one ``jax.tree.map``; it is what the lessons before ``optim`` use.
The others come from optax. ``momentum`` is ``torch.optim.SGD(momentum=0.9)``:
optax's ``trace`` keeps ``v = g + 0.9 v`` and steps ``-lr v``, as torch does.

``resolve_optimizer`` is the one place an ``optimizer=``/``lr=`` pair becomes
the factory the compiled loop calls, a readable name and the learning rate to
record. A learning rate is never borrowed from another optimizer: each
(model family, optimizer) pair has its own measured default
(``DEFAULT_LRS``), and a pair without one asks for ``lr``.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable, NamedTuple

import jax

from fnnet.data import check_lr
from fnnet.errors import ConfigError
from fnnet.lessons import FAMILY_RATES, NUMPY


def _optax():
    import optax  # imported on first use: the raw-weight lessons train without it

    return optax


class HandWritten(NamedTuple):
    """An ``(init, update)`` pair with optax's contract, written without optax."""

    init: Callable
    update: Callable


def sgd_by_hand(learning_rate) -> HandWritten:
    """Plain gradient descent written by hand: the update is ``-learning_rate * grad``.

    It keeps no state (an empty tuple), it follows optax's ``init``/``update``
    contract without importing optax (the raw-weight lessons start faster),
    and it works on NumPy arrays as well as JAX arrays (it calls no ``jnp``
    function), so the ``numpy`` lesson uses it too.

    Examples:
      >>> import numpy as np
      >>> opt = sgd_by_hand(0.5)
      >>> updates, _ = opt.update({"w": np.array([2.0])}, opt.init(None))
      >>> updates
      {'w': array([-1.])}
    """

    def init(params):
        del params
        return ()

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda g: -learning_rate * g, grads), state

    return HandWritten(init, update)


def sgd(learning_rate):
    """``optax.sgd(learning_rate)``: ``torch.optim.SGD`` without momentum."""
    return _optax().sgd(learning_rate)


def sgd_momentum(learning_rate):
    """SGD with momentum 0.9, the ``control_flow`` lesson's optimizer."""
    return _optax().sgd(learning_rate, momentum=0.9)


def adam(learning_rate):
    """``optax.adam(learning_rate)``: ``torch.optim.Adam`` with its default betas and eps."""
    return _optax().adam(learning_rate)


def rmsprop(learning_rate):
    """``torch.optim.RMSprop(lr=learning_rate)`` exactly, the ``sine_optim`` lesson's optimizer.

    torch keeps ``s = 0.99 s + 0.01 g^2`` (starting at 0) and steps
    ``-lr g / (sqrt(s) + 1e-8)``: eps added after the square root, no bias
    correction, no momentum. optax's defaults differ (decay 0.9, eps inside
    the root), so each is set here.

    Examples:
      >>> import jax.numpy as jnp
      >>> opt = rmsprop(0.1)
      >>> g = {"w": jnp.array([2.0])}
      >>> updates, _ = opt.update(g, opt.init(g))
      >>> bool(jnp.isclose(updates["w"][0], -0.1 * 2.0 / (0.2 + 1e-8), rtol=1e-6))  # s = 0.01 * 2^2, sqrt(s) = 0.2
      True
    """
    return _optax().rmsprop(learning_rate, decay=0.99, eps=1e-8, eps_in_sqrt=False)


OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "sgd": sgd,
    "momentum": sgd_momentum,
    "adam": adam,
    "rmsprop": rmsprop,
    "sgd-by-hand": sgd_by_hand,
}
"""Optimizer name -> factory taking the learning rate."""

DEFAULT_LRS: dict[tuple[str, str], float] = {
    (family, name): lr for family, rates in FAMILY_RATES.items() for name, lr in rates.items()
}
"""(model family, optimizer name) -> the learning rate used when none is given.

A lesson's own optimizer always runs at the lesson's (the tutorial's) rate;
these fill in the other optimizers, each measured to converge at the seed's
sizes (``tests/test_sine.py`` trains every sine pair, ``tests/test_own_model.py`` the rmsprop ones).
"""


@dataclasses.dataclass(frozen=True)
class Fixed:
    """An optax transformation given whole: it carries its own learning rate or schedule."""

    transformation: Any

    def __call__(self, lr):
        del lr
        return self.transformation


@dataclasses.dataclass(frozen=True)
class Scheduled:
    """A named optimizer whose learning rate is an optax schedule (a function of the step count)."""

    factory: Callable
    schedule: Callable

    def __call__(self, lr):
        del lr
        return self.factory(self.schedule)


_SHAPES = {  # what optax composes, less its last part (the learning rate: a constant or a schedule)
    ("scale_by_adam",): "adam",
    ("scale_by_adam", "add_decayed_weights"): "adamw",
    (): "sgd",
    ("trace",): "sgd with momentum",
    ("scale_by_rms",): "rmsprop",
    ("scale_by_rms", "trace"): "rmsprop with momentum",
    ("scale_by_rss",): "adagrad",
    ("scale_by_lion",): "lion",
}
_RATE = ("scale_by_learning_rate", "scale", "scale_by_schedule")
_KNOWN = {(*shape, rate): name for shape, name in _SHAPES.items() for rate in _RATE}


def optimizer_name(transformation) -> str:
    """A readable name for an optax transformation: ``"adamw (optax)"``, ``"chain(clip_by_global_norm, adam) (optax)"``.

    Read from the names of the update functions optax composes (optax keeps no
    name of its own); anything unrecognised is named by its parts.

    Examples:
      >>> import optax
      >>> optimizer_name(optax.adamw(1e-3))
      'adamw (optax)'
      >>> optimizer_name(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)))
      'chain(clip_by_global_norm, adam) (optax)'
    """
    return f"{_describe(transformation.update)} (optax)"


def _elements(update) -> list:
    """The update functions of what ``update`` is made of: the transformation a wrapper wraps, a chain's parts."""
    name = getattr(update, "__qualname__", type(update).__name__).split(".<locals>")[0]
    cells = [_cell(c) for c in (update.__closure__ or ())] if hasattr(update, "__closure__") else []
    if name == "with_extra_args_support":  # optax's wrapper around a plain transformation
        return [w.update for w in cells if hasattr(w, "update")][:1]
    if name == "chain":
        return [f for fns in cells if isinstance(fns, tuple) for f in fns if callable(f)]
    return []


def _parts(update) -> tuple[str, ...]:
    """The names of the plain transformations ``update`` is made of, in order."""
    elements = _elements(update)
    if not elements:
        return (getattr(update, "__qualname__", type(update).__name__).split(".<locals>")[0],)
    return tuple(part for f in elements for part in _parts(f))


def _cell(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _describe(update) -> str:
    parts = _parts(update)
    if parts in _KNOWN:
        return _KNOWN[parts]
    elements = _elements(update)
    if len(elements) == 1:
        return _describe(elements[0])
    if not elements:
        return parts[0]
    return f"chain({', '.join(_describe(f) for f in elements)})"


def resolve_optimizer(optimizer, lr, *, family: str, default: str, default_lr: float | None = None,
                      numpy_backend: bool = False, dtype: str = "float32", numpy_lesson: str = NUMPY) -> tuple[Callable, str, float | None]:
    """``(factory, name, lr)`` for the run: ``factory(lr)`` builds the optax transformation inside the loop.

    Args:
      optimizer: None (``default``), a name in ``OPTIMIZERS``, or any optax
        transformation (which carries its own rate: leave ``lr`` None).
      lr: None (the default for this family and optimizer), a positive
        number, or an optax schedule ``step -> rate``.
      family: ``"weights"``, ``"module"``, ``"sine"``, ``"sine_legendre"``, ``"sine_dynamic"`` or ``"own"`` (see ``DEFAULT_LRS``).
      default: the optimizer used when ``optimizer`` is None.
      default_lr: the rate of ``default`` (a lesson's own, the tutorial's).
      numpy_backend: a NumPy lesson, which has only its hand-written SGD.
      numpy_lesson: that lesson's id, for the messages.
      dtype: what the run computes in; a rate it cannot hold is refused.

    Returns:
      The factory, a readable name, and the numeric learning rate (None when
      a schedule or the transformation holds it).

    Examples:
      >>> resolve_optimizer("adam", None, family="module", default="sgd")[1:]
      ('adam', 0.0001)
      >>> resolve_optimizer("sgd", None, family="weights", default="sgd-by-hand", default_lr=1e-6)[1:]
      ('sgd', 1e-06)
    """
    if optimizer is not None and not isinstance(optimizer, str):
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise ConfigError(f"unknown optimizer {optimizer!r}; expected one of: {', '.join(OPTIMIZERS)} "
                              "or an optax.GradientTransformation")
        if numpy_backend:
            raise ConfigError(f"lesson {numpy_lesson!r} runs in NumPy and takes only its hand-written SGD")
        if lr is not None:
            raise ConfigError("give lr inside the optax optimizer or as lr=, not both")
        return Fixed(optimizer), optimizer_name(optimizer), None
    name = default if optimizer is None else optimizer
    if name not in OPTIMIZERS:
        near = [n for n in OPTIMIZERS if n.startswith(str(name)[:3])]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"unknown optimizer {name!r}{hint}; expected one of: {', '.join(OPTIMIZERS)} "
                          "or an optax.GradientTransformation")
    if numpy_backend:
        if name not in ("sgd", "sgd-by-hand"):
            raise ConfigError(f"lesson {numpy_lesson!r} runs in NumPy and takes only sgd (by hand), not {name!r}")
        name = "sgd-by-hand"
    if callable(lr) and not isinstance(lr, numbers.Real):
        if numpy_backend:
            raise ConfigError(f"lesson {numpy_lesson!r} runs in NumPy: its hand-written SGD takes a fixed learning rate")
        if name == "sgd-by-hand":
            raise ConfigError("a learning-rate schedule needs an optax optimizer: sgd, momentum, adam or rmsprop")
        return Scheduled(OPTIMIZERS[name], lr), f"{name} (scheduled)", None
    if lr is None:
        same_rule = {name, default} <= {"sgd", "sgd-by-hand"}  # optax.sgd is the hand-written update: same rate
        if (name == default or same_rule) and default_lr is not None:
            lr = default_lr
        elif (family, name) in DEFAULT_LRS:
            lr = DEFAULT_LRS[(family, name)]
        else:
            raise ConfigError(f"no default learning rate for {name} here; give one (lr=, --lr)")
    return OPTIMIZERS[name], name, check_lr(lr, dtype)
