"""Pure pieces of the two-layer network: activations, forward pass, loss, backward.

Every function here is a pure function of its arguments. ``manual_grads`` and
``sum_squared_error`` also accept NumPy arrays and then compute in NumPy (they
use the array's own namespace), which is how the ``numpy`` lesson shares this
code with the JAX lessons instead of copying it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from fnnet.data import Sizes, fast_compiled
from fnnet.model import Model, call_apply  # noqa: F401 (Model: fnnet.functional.Model before the layout)

Params = dict[str, Float[Array, "..."]]  # {"w1": (d_in, hidden), "w2": (hidden, d_out)}


def _namespace(x):
    """The array namespace of ``x``: ``numpy`` for NumPy arrays and scalars, ``jax.numpy`` for anything else."""
    return np if isinstance(x, (np.ndarray, np.generic)) else jnp


def relu(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """ReLU as the tutorial's ``h.clamp(min=0)``: value ``max(x, 0)``, gradient 1 where ``x >= 0``.

    At exactly 0 the gradient passes (as in ``torch.clamp`` and the seed's
    ``grad_h[h < 0] = 0``). ``jax.nn.relu`` gives gradient 0 there and
    ``jnp.maximum(x, 0)`` gives 0.5; the difference only shows at exact zeros,
    but it is the difference between matching PyTorch bit for bit and not.

    Examples:
      >>> relu(jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 0., 2.], dtype=float32)
      >>> jax.grad(lambda x: relu(x).sum())(jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 1., 1.], dtype=float32)
    """
    xp = _namespace(x)
    return xp.where(x < 0, xp.zeros_like(x), x)


@jax.custom_vjp
def my_relu(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """ReLU with a hand-written backward pass, the JAX counterpart of the tutorial's ``MyReLU``.

    ``jax.custom_vjp`` pairs a forward rule, which returns the output and the
    residuals the backward rule needs (here the input, like
    ``ctx.save_for_backward(x)``), with a backward rule that maps the output's
    cotangent to the input's. The backward zeroes the incoming gradient where
    the input is < 0 and passes it everywhere else, at exactly 0 too, as the seed
    does. (``jax.nn.relu`` would give 0 at 0 and ``jnp.maximum(x, 0)`` 0.5.)
    No ``clone()`` is needed: JAX arrays are immutable, so ``jnp.where`` makes
    the new array.

    Examples:
      >>> x = jnp.array([-2.0, 0.0, 3.0])
      >>> my_relu(x)
      Array([0., 0., 3.], dtype=float32)
      >>> jax.grad(lambda x: my_relu(x).sum())(x)
      Array([0., 1., 1.], dtype=float32)
    """
    return relu(x)  # the value is plain ReLU's (jnp.maximum would flush subnormals to 0 on XLA:CPU)


def _my_relu_fwd(x):
    return my_relu(x), x  # the residual is the input, as with save_for_backward


def _my_relu_bwd(x, grad_output):
    return (jnp.where(x < 0, jnp.zeros_like(grad_output), grad_output),)


my_relu.defvjp(_my_relu_fwd, _my_relu_bwd)


@fast_compiled(static_argnames="sizes")
def init_weights(sizes: Sizes, *, key: jax.Array) -> Params:
    """The tutorial's raw weights: ``w1`` (d_in, hidden) and ``w2`` (hidden, d_out), standard normal, no bias.

    Examples:
      >>> p = init_weights(Sizes(4, 10, 6, 3), key=jax.random.key(0))
      >>> {k: v.shape for k, v in p.items()}
      {'w1': (10, 6), 'w2': (6, 3)}
    """
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (sizes.d_in, sizes.hidden), jnp.float32),
        "w2": jax.random.normal(k2, (sizes.hidden, sizes.d_out), jnp.float32),
    }


def two_layer(
    params: Params,
    x: Float[Array, "batch d_in"],
    activation: Callable[[Array], Array] = relu,
) -> Float[Array, "batch d_out"]:
    """Forward pass ``activation(x @ w1) @ w2``.

    Examples:
      >>> p = {"w1": jnp.eye(2), "w2": jnp.ones((2, 1))}
      >>> two_layer(p, jnp.array([[1.0, -3.0]]))
      Array([[1.]], dtype=float32)
    """
    return activation(x @ params["w1"]) @ params["w2"]


def sum_squared_error(
    y_pred: Float[Array, "batch d_out"], y: Float[Array, "batch d_out"]
) -> Float[Array, ""]:
    """Sum of squared differences, the tutorial's loss (``MSELoss(reduction='sum')``).

    Examples:
      >>> sum_squared_error(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 0.0]]))
      Array(5., dtype=float32)
    """
    xp = _namespace(y_pred)
    return xp.sum(xp.square(y_pred - y))


def manual_grads(
    params: Params, x: Float[Array, "batch d_in"], y: Float[Array, "batch d_out"]
) -> tuple[Float[Array, ""], Params]:
    """The tutorial's hand-written forward and backward pass; returns ``(loss, grads)``.

    The same contract as ``jax.value_and_grad(loss)(params, x, y)``, computed by
    the chain rule written out: ``grad_h`` is zeroed where ``h < 0``. Works on
    JAX arrays (jit-able) and on NumPy arrays (computes in NumPy).

    Examples:
      >>> key = jax.random.key(0)
      >>> p = init_weights(Sizes(4, 10, 6, 3), key=key)
      >>> x, y = jnp.ones((4, 10)), jnp.zeros((4, 3))
      >>> loss, grads = manual_grads(p, x, y)
      >>> ref = jax.grad(lambda p: sum_squared_error(two_layer(p, x), y))(p)
      >>> bool(jnp.allclose(grads["w1"], ref["w1"], rtol=1e-5))
      True
    """
    xp = _namespace(x)
    w1, w2 = params["w1"], params["w2"]
    h = x @ w1
    h_relu = relu(h)
    y_pred = h_relu @ w2
    loss = sum_squared_error(y_pred, y)

    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h_relu.T @ grad_y_pred
    grad_h_relu = grad_y_pred @ w2.T
    grad_h = xp.where(h < 0, xp.zeros_like(grad_h_relu), grad_h_relu)
    grad_w1 = x.T @ grad_h
    return loss, {"w1": grad_w1, "w2": grad_w2}


@dataclasses.dataclass(frozen=True)
class TwoLayer:
    """The raw-weights two-layer model of the first lessons: ``activation(x @ w1) @ w2``, no bias.

    A frozen dataclass: two equal ``TwoLayer`` objects are one model to
    ``jit``, so a second run at the same sizes reuses the compiled loop.

    Examples:
      >>> model = TwoLayer(Sizes(4, 10, 6, 3))
      >>> model.apply(model.init(jax.random.key(0)), jnp.ones((4, 10))).shape
      (4, 3)
      >>> TwoLayer(Sizes(4, 10, 6, 3)) == model
      True
    """

    sizes: Sizes
    activation: Callable[[Array], Array] = relu

    def init(self, key: jax.Array) -> Params:
        return init_weights(self.sizes, key=key)

    def apply(self, params: Params, x: Float[Array, "batch d_in"], key=None) -> Float[Array, "batch d_out"]:
        del key
        return two_layer(params, x, self.activation)

    def manual_grads(self, params: Params, x, y):
        """The hand-written backward (``manual_grads``: ReLU and the sum-of-squares loss)."""
        return manual_grads(params, x, y)


def two_layer_model(sizes: Sizes, activation: Callable[[Array], Array] | None = None) -> TwoLayer:
    """The raw-weights two-layer model of the first lessons (``TwoLayer``).

    Examples:
      >>> model = two_layer_model(Sizes(4, 10, 6, 3))
      >>> model.apply(model.init(jax.random.key(0)), jnp.ones((4, 10)), None).shape
      (4, 3)
    """
    return TwoLayer(sizes, relu if activation is None else activation)


def mean_squared_error(
    y_pred: Float[Array, "batch d_out"], y: Float[Array, "batch d_out"]
) -> Float[Array, ""]:
    """Mean of squared differences (``MSELoss()``, the default reduction).

    Examples:
      >>> mean_squared_error(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 0.0]]))
      Array(2.5, dtype=float32)
    """
    xp = _namespace(y_pred)
    return xp.mean(xp.square(y_pred - y))


def cross_entropy(logits: Float[Array, "batch classes"], labels: Int[Array, " batch"]) -> Float[Array, ""]:
    """Mean softmax cross entropy of ``logits`` against integer ``labels`` (``nn.CrossEntropyLoss()``), via optax.

    Examples:
      >>> round(float(cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([1]))), 4)  # log 2
      0.6931
    """
    import optax  # only models trained with this loss need optax here

    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


LOSSES: dict[str, Callable] = {"sse": sum_squared_error, "mse": mean_squared_error, "cross_entropy": cross_entropy}
"""Loss name -> ``loss(y_pred, y) -> scalar``; ``fit(loss=...)`` takes a name or such a function."""


def grad_function(model, gradient: str, loss: Callable) -> Callable:
    """``(params, batch, key) -> (loss, grads)`` for a model, a gradient rule and a loss.

    Examples:
      >>> from fnnet.lessons.functional import TwoLayer, sum_squared_error
      >>> from fnnet.data import Sizes
      >>> model = TwoLayer(Sizes(4, 10, 6, 3))
      >>> params, batch = model.init(jax.random.key(0)), (jnp.ones((4, 10)), jnp.zeros((4, 3)))
      >>> by_hand = grad_function(model, "by hand", sum_squared_error)(params, batch, None)[1]
      >>> auto = grad_function(model, "jax.grad", sum_squared_error)(params, batch, None)[1]
      >>> bool(jnp.allclose(by_hand["w1"], auto["w1"], rtol=1e-5))
      True
    """
    if gradient == "by hand":  # the model's own backward, written out (TwoLayer, fnnet.sine.Cubic)

        def by_hand(params, batch, key):
            del key
            return model.manual_grads(params, *batch)

        return by_hand

    def objective(params, batch, key):
        x, y = batch
        return loss(call_apply(model, params, x, key), y)

    return jax.value_and_grad(objective)
