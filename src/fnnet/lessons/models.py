"""A lesson record and sizes as the functions the training loop takes: the one place an id becomes functions.

``lesson_model`` gives the model (``init(key) -> params``, ``apply(params, x, key)``),
``lesson_functions`` its ``init`` and ``grad_fn`` for checks and pages, ``to_backend``
casts a tree to what a lesson computes with.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.data import FAST_COMPILE, Sizes
from fnnet.errors import ConfigError
from fnnet.lessons import get_lesson
from fnnet.lessons.functional import TwoLayer, grad_function, my_relu, relu, sum_squared_error
from fnnet.lessons.sine import Cubic, Legendre3


def _nnx(builder: str) -> Callable[[Sizes], Any]:
    """``sizes -> NnxModel`` of ``fnnet.lessons.modules.<builder>``; flax is imported only when such a lesson runs."""

    def model(sizes: Sizes):
        from fnnet.lessons import modules

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
``NnxModel``, or for the sine edition a ``fnnet.lessons.sine`` model."""

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
