"""The eight steps of the tutorial as data: one ``Lesson`` record per step.

Each lesson names its model, how its gradient is computed, where it runs and its
default optimizer and learning rate; consecutive lessons differ in one of these
fields. ``lesson_functions`` turns a lesson and sizes into the plain functions the
training loop takes: ``init(key) -> params`` and ``grad_fn(params, batch, key) ->
(loss, grads)``.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.data import Sizes
from fnnet.errors import ConfigError
from fnnet.functional import Model, manual_grads, my_relu, sum_squared_error, two_layer_model
from fnnet.modules import DynamicNet, TwoLayerNet, nnx_model, sequential


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
    """

    id: str
    title: str
    idea: str
    model: str
    gradient: str
    backend: str
    optimizer: str
    lr: float


def _weights(sizes: Sizes) -> Model:
    return two_layer_model(sizes)


def _weights_my_relu(sizes: Sizes) -> Model:
    return two_layer_model(sizes, my_relu)


MODELS: dict[str, Callable[[Sizes], Model]] = {
    "weights": _weights,
    "weights+my_relu": _weights_my_relu,
    "nnx.Sequential": functools.partial(nnx_model, sequential),
    "TwoLayerNet": functools.partial(nnx_model, TwoLayerNet),
    "DynamicNet": functools.partial(nnx_model, DynamicNet),
}
"""Model name -> ``sizes -> Model``."""

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
]

LESSONS: dict[str, Lesson] = {lesson.id: lesson for lesson in _ALL}
"""Lesson id -> Lesson, in tutorial order.

Examples:
  >>> list(LESSONS)
  ['numpy', 'tensors', 'autograd', 'custom_function', 'nn', 'optim', 'custom_module', 'control_flow']
  >>> LESSONS["optim"].optimizer, LESSONS["optim"].lr
  ('adam', 0.0001)
"""


def get_lesson(lesson_id: str) -> Lesson:
    """The lesson called ``lesson_id``; a ConfigError listing the ids if there is none.

    Examples:
      >>> get_lesson("nn").model
      'nnx.Sequential'
    """
    if not isinstance(lesson_id, str) or lesson_id not in LESSONS:
        raise ConfigError(f"unknown lesson {lesson_id!r}; expected one of: {', '.join(LESSONS)}")
    return LESSONS[lesson_id]


class LessonFunctions(NamedTuple):
    """What the training loop needs from a lesson at given sizes."""

    init: Callable  # key -> params (float64 NumPy arrays for the numpy backend)
    grad_fn: Callable  # (params, batch, key) -> (loss, grads)
    model: Model  # the lesson's model in float32 JAX, before any backend conversion


def to_backend(tree, backend: str, dtype=None):
    """The arrays of ``tree`` as ``backend`` computes with them.

    ``"numpy"``: float64 NumPy arrays. ``"jax"``: JAX arrays of ``dtype``
    (default float32; arrays that already are need no copy).

    Examples:
      >>> to_backend({"w": np.arange(2)}, "numpy")["w"].dtype
      dtype('float64')
      >>> to_backend({"w": np.ones(2)}, "jax")["w"].dtype
      dtype('float32')
    """
    if backend == "numpy":
        return jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), tree)
    dtype = jnp.float32 if dtype is None else dtype
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)


@functools.lru_cache(maxsize=None)
def lesson_functions(lesson_id: str, sizes: Sizes) -> LessonFunctions:
    """Resolve a lesson at ``sizes`` into ``init``, ``grad_fn`` and ``apply``.

    Cached: the same (lesson, sizes) gives the same function objects, so the
    compiled training loop is reused.

    Examples:
      >>> fns = lesson_functions("autograd", Sizes(4, 10, 6, 3))
      >>> params = fns.init(jax.random.key(0))
      >>> loss, grads = fns.grad_fn(params, (jax.numpy.ones((4, 10)), jax.numpy.zeros((4, 3))), None)
      >>> jax.tree.map(jax.numpy.shape, grads)
      {'w1': (10, 6), 'w2': (6, 3)}
    """
    lesson = get_lesson(lesson_id)
    model = MODELS[lesson.model](sizes)

    if lesson.gradient == "by hand":

        def grad_fn(params, batch, key):
            del key
            return manual_grads(params, *batch)

    else:

        def loss(params, batch, key):
            x, y = batch
            return sum_squared_error(model.apply(params, x, key), y)

        grad_fn = jax.value_and_grad(loss)

    init_jax = jax.jit(model.init)  # one compiled call, not one per eager op

    def init(key):
        return to_backend(init_jax(key), lesson.backend)

    return LessonFunctions(init, grad_fn, model)
