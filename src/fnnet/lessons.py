"""The steps of the tutorial as data: one ``Lesson`` record per step, for both editions.

Each lesson names its model, how its gradient is computed, where it runs and its
default optimizer and learning rate; consecutive lessons differ in one of these
fields. The ``classic`` edition (the seed's two-layer net on random data) comes
first; the ``sine`` edition (pytorch.org's today: polynomial fits of sin(x),
see ``fnnet.sine``) follows with the same eight steps. ``lesson_model`` turns a lesson and sizes into the model the training
loop takes (``init(key) -> params``, ``apply(params, x, key)``); this module is
the one place where a lesson id becomes functions.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.data import FAST_COMPILE, Sizes
from fnnet.errors import ConfigError
from fnnet.core import grad_function
from fnnet.functional import TwoLayer, my_relu, relu, sum_squared_error
from fnnet.sine import Cubic, Legendre3


class Lesson(NamedTuple):
    """One step of the tutorial.

    Attributes:
      id: the public id (``"numpy"`` ... ``"control_flow"``).
      title: the tutorial's name for the step.
      idea: what this step changes, in one line.
      model: name of the model (a key of ``MODELS``).
      gradient: ``"by hand"`` (``manual_grads``) or ``"jax.grad"``.
      backend: ``"numpy"`` (float64, a Python loop) or ``"jax"`` (float32, compiled).
      optimizer: default optimizer, a key of ``fnnet.optimizers.OPTIMIZERS``.
      lr: default learning rate (the seed's).
      edition: which edition of the tutorial: ``"classic"`` (the seed's
        two-layer net on random data) or ``"sine"`` (a polynomial fit of sin(x)).
      steps: default training steps (the tutorial's).
      print_every: the tutorial prints the loss when ``t % print_every == print_every - 1``.
    """

    id: str
    title: str
    idea: str
    model: str
    gradient: str
    backend: str
    optimizer: str
    lr: float
    edition: str = "classic"
    steps: int = 500
    print_every: int = 100


EDITIONS = ("classic", "sine")


def _nnx(builder: str) -> Callable[[Sizes], Any]:
    """``sizes -> NnxModel`` of ``fnnet.modules.<builder>``; flax is imported only when such a lesson runs."""

    def model(sizes: Sizes):
        from fnnet import modules

        return modules.nnx_model(getattr(modules, builder), sizes)

    return model


MODELS: dict[str, Callable[[Sizes], Any]] = {
    "weights": functools.partial(TwoLayer, activation=relu),
    "weights+my_relu": functools.partial(TwoLayer, activation=my_relu),
    "nnx.Sequential": _nnx("sequential"),
    "TwoLayerNet": _nnx("TwoLayerNet"),
    "DynamicNet": _nnx("DynamicNet"),
    # the sine edition: fixed shapes, so the sizes are ignored
    "cubic": lambda sizes: Cubic(),
    "legendre3": lambda sizes: Legendre3(),
    "nnx.Linear(3, 1)": _nnx("sine_linear"),
    "Polynomial3": _nnx("Polynomial3"),
    "SineDynamicNet": _nnx("SineDynamicNet"),
}
"""Model name -> ``sizes -> model`` (hashable, so jit reuses its program): a ``TwoLayer``, an
``NnxModel``, or for the sine edition a ``fnnet.sine`` model."""

_ALL = [
    Lesson("numpy", "Warm-up: NumPy", "forward and backward by hand, in NumPy float64",
           "weights", "by hand", "numpy", "sgd-by-hand", 1e-6),
    Lesson("tensors", "Tensors", "the same by hand, in jax.numpy under jit",
           "weights", "by hand", "jax", "sgd-by-hand", 1e-6),
    Lesson("autograd", "Autograd", "jax.grad of the loss replaces the hand-written backward",
           "weights", "jax.grad", "jax", "sgd-by-hand", 1e-6),
    Lesson("custom_function", "Defining new autograd functions", "a jax.custom_vjp ReLU (MyReLU)",
           "weights+my_relu", "jax.grad", "jax", "sgd-by-hand", 1e-6),
    Lesson("nn", "nn module", "flax nnx layers with biases, torch-style init",
           "nnx.Sequential", "jax.grad", "jax", "sgd-by-hand", 1e-4),
    Lesson("optim", "optim", "optax.adam does the update",
           "nnx.Sequential", "jax.grad", "jax", "adam", 1e-4),
    Lesson("custom_module", "Custom nn Modules", "a TwoLayerNet(nnx.Module), optax.sgd",
           "TwoLayerNet", "jax.grad", "jax", "sgd", 1e-4),
    Lesson("control_flow", "Control flow + weight sharing",
           "DynamicNet: one middle layer reused 0-3 times, depth drawn per step",
           "DynamicNet", "jax.grad", "jax", "momentum", 1e-4),
    # the sine edition: y = sin(x) on 2000 points of [-pi, pi], the tutorial's numbers
    Lesson("sine_numpy", "Warm-up: NumPy", "a cubic fitted by hand in NumPy float64",
           "cubic", "by hand", "numpy", "sgd-by-hand", 1e-6, "sine", 2000),
    Lesson("sine_tensors", "Tensors", "the same by hand, in jax.numpy under jit",
           "cubic", "by hand", "jax", "sgd-by-hand", 1e-6, "sine", 2000),
    Lesson("sine_autograd", "Autograd", "jax.grad of the loss replaces the hand-written backward",
           "cubic", "jax.grad", "jax", "sgd-by-hand", 1e-6, "sine", 2000),
    Lesson("sine_custom_function", "Defining new autograd functions",
           "a + b P3(c + d x), P3 a jax.custom_vjp (LegendrePolynomial3)",
           "legendre3", "jax.grad", "jax", "sgd-by-hand", 5e-6, "sine", 2000),
    Lesson("sine_nn", "nn module", "features (x, x^2, x^3) into an nnx.Linear(3, 1)",
           "nnx.Linear(3, 1)", "jax.grad", "jax", "sgd-by-hand", 1e-6, "sine", 2000),
    Lesson("sine_optim", "optim", "RMSprop as torch computes it does the update",
           "nnx.Linear(3, 1)", "jax.grad", "jax", "rmsprop", 1e-3, "sine", 2000),
    Lesson("sine_custom_module", "Custom nn Modules", "a Polynomial3(nnx.Module), optax.sgd",
           "Polynomial3", "jax.grad", "jax", "sgd", 1e-6, "sine", 2000),
    Lesson("sine_control_flow", "Control flow + weight sharing",
           "DynamicNet: e x^4 and e x^5 added 0-2 times per step, e shared",
           "SineDynamicNet", "jax.grad", "jax", "momentum", 1e-8, "sine", 30000, 2000),
]

LESSONS: dict[str, Lesson] = {lesson.id: lesson for lesson in _ALL}
"""Lesson id -> Lesson, in tutorial order: the classic edition, then the sine edition.

Examples:
  >>> list(LESSONS)[:8]
  ['numpy', 'tensors', 'autograd', 'custom_function', 'nn', 'optim', 'custom_module', 'control_flow']
  >>> LESSONS["optim"].optimizer, LESSONS["optim"].lr
  ('adam', 0.0001)
  >>> LESSONS["sine_optim"].optimizer, LESSONS["sine_optim"].steps
  ('rmsprop', 2000)
"""


def edition_ids(edition: str) -> list[str]:
    """The lesson ids of an edition (``"classic"`` or ``"sine"``), or of both (``"all"``), in tutorial order.

    Examples:
      >>> edition_ids("sine")[:3]
      ['sine_numpy', 'sine_tensors', 'sine_autograd']
      >>> len(edition_ids("all"))
      16
    """
    if edition == "all":
        return list(LESSONS)
    if edition not in EDITIONS:
        raise ConfigError(f"unknown edition {edition!r}; expected one of: {', '.join(EDITIONS)}, all")
    return [lesson.id for lesson in LESSONS.values() if lesson.edition == edition]


def get_lesson(lesson_id: str) -> Lesson:
    """The lesson called ``lesson_id``; a ConfigError listing the ids (and the nearest one) if there is none.

    Examples:
      >>> get_lesson("nn").model
      'nnx.Sequential'
      >>> get_lesson("optm")
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: unknown lesson 'optm'; did you mean 'optim'? expected one of: numpy, tensors, autograd, custom_function, nn, optim, custom_module, control_flow, sine_numpy, sine_tensors, sine_autograd, sine_custom_function, sine_nn, sine_optim, sine_custom_module, sine_control_flow
    """
    if not isinstance(lesson_id, str) or lesson_id not in LESSONS:
        near = difflib.get_close_matches(lesson_id, LESSONS, n=1) if isinstance(lesson_id, str) else []
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(f"unknown lesson {lesson_id!r}; {hint}expected one of: {', '.join(LESSONS)}")
    return LESSONS[lesson_id]


def lesson_model(lesson_id: str, sizes: Sizes):
    """The model of lesson ``lesson_id`` at ``sizes``.

    Examples:
      >>> lesson_model("custom_module", Sizes(4, 10, 6, 3)).init(jax.random.key(0))["linear2"]["kernel"].shape
      (6, 3)
    """
    return MODELS[get_lesson(lesson_id).model](sizes)


def sizes_of(lesson_id: str, params) -> dict:
    """The sizes a lesson's weights imply: ``{"d_in", "hidden", "d_out"}`` from the first and last weight matrix.

    Examples:
      >>> sizes_of("tensors", {"w1": np.ones((5, 7)), "w2": np.ones((7, 2))})
      {'d_in': 5, 'hidden': 7, 'd_out': 2}
    """
    get_lesson(lesson_id)
    matrices = [np.shape(leaf) for leaf in jax.tree.leaves(params) if np.ndim(leaf) == 2]
    if not matrices:
        raise ConfigError(f"params hold no weight matrix; lesson {lesson_id!r} expects its weights")
    return {"d_in": matrices[0][0], "hidden": matrices[0][1], "d_out": matrices[-1][1]}


class LessonFunctions(NamedTuple):
    """A lesson at given sizes as plain functions (for checks and notebooks; ``fit`` needs none of this)."""

    init: Callable  # key -> params (float64 NumPy arrays for the numpy backend)
    grad_fn: Callable  # (params, batch, key) -> (loss, grads)
    model: Any  # the lesson's model in float32 JAX


def lesson_functions(lesson_id: str, sizes: Sizes) -> LessonFunctions:
    """A lesson at ``sizes`` as ``init``, ``grad_fn`` and its model.

    Examples:
      >>> fns = lesson_functions("autograd", Sizes(4, 10, 6, 3))
      >>> params = fns.init(jax.random.key(0))
      >>> loss, grads = fns.grad_fn(params, (jax.numpy.ones((4, 10)), jax.numpy.zeros((4, 3))), None)
      >>> jax.tree.map(jax.numpy.shape, grads)
      {'w1': (10, 6), 'w2': (6, 3)}
    """
    lesson = get_lesson(lesson_id)
    model = lesson_model(lesson.id, sizes)

    def init(key):
        return to_backend(init_params(model, key), lesson.backend)

    return LessonFunctions(init, grad_function(model, lesson.gradient, sum_squared_error), model)


@functools.partial(jax.jit, static_argnames="model", compiler_options=FAST_COMPILE)
def init_params(model, key: jax.Array):
    """``model.init(key)`` as one compiled call (not one per eager op); compiled once per model.

    Examples:
      >>> jax.tree.map(jax.numpy.shape, init_params(TwoLayer(Sizes(2, 3, 4, 1)), jax.random.key(0)))
      {'w1': (3, 4), 'w2': (4, 1)}
    """
    return model.init(key)


def to_backend(tree, backend: str, dtype=None):
    """The arrays of ``tree`` as ``backend`` computes with them; integer arrays (class labels) stay integers.

    ``"numpy"``: float64 NumPy arrays. ``"jax"``: JAX arrays of ``dtype``
    (default float32; arrays that already are need no copy).

    Examples:
      >>> to_backend({"w": np.arange(2.0)}, "numpy")["w"].dtype
      dtype('float64')
      >>> to_backend({"w": np.ones(2)}, "jax")["w"].dtype
      dtype('float32')
      >>> to_backend({"labels": np.arange(3)}, "jax")["labels"].dtype
      dtype('int32')
    """
    def cast(a):
        labels = np.issubdtype(np.asarray(a).dtype if not hasattr(a, "dtype") else a.dtype, np.integer)
        if backend == "numpy":
            return np.asarray(a) if labels else np.asarray(a, dtype=np.float64)
        return jnp.asarray(a, jnp.int32) if labels else jnp.asarray(a, jnp.float32 if dtype is None else dtype)

    return jax.tree.map(cast, tree)
