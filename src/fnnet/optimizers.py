"""The update rules the lessons use, each a ``learning_rate -> optax.GradientTransformation``.

``sgd-by-hand`` is the tutorial's ``param -= learning_rate * param.grad`` loop
written as one ``jax.tree.map``; it is what the lessons before ``optim`` use.
The others come from optax. ``momentum`` is ``torch.optim.SGD(momentum=0.9)``:
optax's ``trace`` keeps ``v = g + 0.9 v`` and steps ``-lr v``, as torch does.
"""

from __future__ import annotations

from typing import Callable

import jax
import optax


def sgd_by_hand(learning_rate) -> optax.GradientTransformation:
    """Plain gradient descent written by hand: the update is ``-learning_rate * grad``.

    It keeps no state, and it works on NumPy arrays as well as JAX arrays (it
    calls no ``jnp`` function), so the ``numpy`` lesson uses it too.

    Examples:
      >>> import numpy as np
      >>> opt = sgd_by_hand(0.5)
      >>> updates, _ = opt.update({"w": np.array([2.0])}, opt.init(None))
      >>> updates
      {'w': array([-1.])}
    """

    def init(params):
        del params
        return optax.EmptyState()

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda g: -learning_rate * g, grads), state

    return optax.GradientTransformation(init, update)


def sgd_momentum(learning_rate) -> optax.GradientTransformation:
    """SGD with momentum 0.9, the ``control_flow`` lesson's optimizer."""
    return optax.sgd(learning_rate, momentum=0.9)


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": sgd_momentum,
    "adam": optax.adam,
    "sgd-by-hand": sgd_by_hand,
}
"""Optimizer name -> factory taking the learning rate."""
