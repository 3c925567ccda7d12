"""The tutorial's ``nn.Module`` models as flax nnx modules, and their pure-function view.

Modules are built and called the nnx way (``TwoLayerNet(sizes, rngs=...)(x)``);
the training loop never holds a module, only its parameters as a plain nested
dict. ``nnx_model`` gives that functional view: ``init(key) -> params`` and
``apply(params, x, key) -> y_pred``, merging the module back inside ``apply``.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int

from fnnet.data import Sizes
from fnnet.functional import Model, relu

MAX_DEPTH = 3  # DynamicNet reuses its middle layer 0..MAX_DEPTH times


def _uniform(bound: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_linear(d_in: int, d_out: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """An ``nnx.Linear`` initialised like ``torch.nn.Linear``.

    Weight and bias are drawn from U(-1/sqrt(d_in), 1/sqrt(d_in)), so a model
    built from these starts at the loss scale the PyTorch tutorial starts at.
    The kernel is stored (d_in, d_out): the transpose of torch's ``weight``.

    Examples:
      >>> layer = torch_linear(4, 2, rngs=nnx.Rngs(0))
      >>> layer.kernel.shape, bool(jnp.abs(layer.kernel[...]).max() <= 0.5)
      ((4, 2), True)
    """
    init = _uniform(1.0 / math.sqrt(d_in))
    return nnx.Linear(d_in, d_out, kernel_init=init, bias_init=init, rngs=rngs)


def sequential(sizes: Sizes, *, rngs: nnx.Rngs) -> nnx.Sequential:
    """``nn.Sequential(Linear, ReLU, Linear)`` as ``nnx.Sequential``.

    Examples:
      >>> model = sequential(Sizes(4, 10, 6, 3), rngs=nnx.Rngs(0))
      >>> model(jnp.ones((4, 10))).shape
      (4, 3)
    """
    return nnx.Sequential(
        torch_linear(sizes.d_in, sizes.hidden, rngs=rngs),
        relu,
        torch_linear(sizes.hidden, sizes.d_out, rngs=rngs),
    )


class TwoLayerNet(nnx.Module):
    """The tutorial's custom module: two linear layers and a ReLU between them.

    Examples:
      >>> net = TwoLayerNet(Sizes(4, 10, 6, 3), rngs=nnx.Rngs(0))
      >>> net(jnp.ones((4, 10))).shape
      (4, 3)
    """

    def __init__(self, sizes: Sizes, *, rngs: nnx.Rngs):
        self.linear1 = torch_linear(sizes.d_in, sizes.hidden, rngs=rngs)
        self.linear2 = torch_linear(sizes.hidden, sizes.d_out, rngs=rngs)

    def __call__(self, x: Float[Array, "batch d_in"]) -> Float[Array, "batch d_out"]:
        return self.linear2(relu(self.linear1(x)))


def draw_depth(key: jax.Array) -> Int[Array, ""]:
    """How many times DynamicNet reuses its middle layer in the step keyed by ``key``: 0..3.

    The counterpart of the tutorial's ``random.randint(0, 3)``, drawn from a JAX
    key so the compiled loop can do it and a run can be replayed.

    Examples:
      >>> depths = jax.vmap(draw_depth)(jax.random.split(jax.random.key(0), 100))
      >>> sorted(set(depths.tolist()))
      [0, 1, 2, 3]
    """
    return jax.random.randint(key, (), 0, MAX_DEPTH + 1, dtype=jnp.int32)  # int32 also under x64: same draws


class DynamicNet(nnx.Module):
    """The tutorial's DynamicNet: one middle layer reused 0-3 times per forward pass.

    There is one ``middle_linear`` and so one set of its parameters; reusing it
    k times makes its gradient the sum of k contributions, and the optimizer
    updates it once per step. The depth comes from a key and the choice is made
    with ``lax.switch`` so it happens inside ``jit`` and stays differentiable
    (a ``fori_loop`` with a traced bound has no reverse mode).

    Examples:
      >>> net = DynamicNet(Sizes(4, 10, 6, 3), rngs=nnx.Rngs(0))
      >>> x = jnp.ones((4, 10))
      >>> net(x, key=jax.random.key(1)).shape
      (4, 3)
      >>> bool(jnp.allclose(net(x, key=jax.random.key(1)), net.at_depth(x, int(draw_depth(jax.random.key(1))))))
      True
    """

    uses_key = True  # nnx_model passes the step's key to __call__

    def __init__(self, sizes: Sizes, *, rngs: nnx.Rngs):
        self.input_linear = torch_linear(sizes.d_in, sizes.hidden, rngs=rngs)
        self.middle_linear = torch_linear(sizes.hidden, sizes.hidden, rngs=rngs)
        self.output_linear = torch_linear(sizes.hidden, sizes.d_out, rngs=rngs)

    def at_depth(self, x: Float[Array, "batch d_in"], depth: int) -> Float[Array, "batch d_out"]:
        """Forward pass with the middle layer applied exactly ``depth`` times (a Python int)."""
        h = relu(self.input_linear(x))
        for _ in range(depth):
            h = relu(self.middle_linear(h))
        return self.output_linear(h)

    def __call__(self, x: Float[Array, "batch d_in"], *, key: jax.Array) -> Float[Array, "batch d_out"]:
        branches = [functools.partial(self.at_depth, depth=k) for k in range(MAX_DEPTH + 1)]
        return jax.lax.switch(draw_depth(key), branches, x)


@functools.lru_cache(maxsize=None)
def nnx_model(build: Callable[..., nnx.Module], sizes: Sizes) -> Model:
    """The pure-function view of the module ``build(sizes, rngs=...)``.

    ``init(key)`` builds the module with ``nnx.Rngs(params=key)`` and returns its
    parameters as a nested dict; ``apply(params, x, key)`` merges them into the
    module's graph and calls it. Cached per (build, sizes) so repeated runs reuse
    the same functions and so the same compiled program.

    Examples:
      >>> model = nnx_model(TwoLayerNet, Sizes(4, 10, 6, 3))
      >>> params = model.init(jax.random.key(0))
      >>> jax.tree.map(jnp.shape, params)
      {'linear1': {'bias': (6,), 'kernel': (10, 6)}, 'linear2': {'bias': (3,), 'kernel': (6, 3)}}
      >>> model.apply(params, jnp.ones((4, 10)), None).shape
      (4, 3)
    """
    abstract = nnx.eval_shape(lambda: build(sizes, rngs=nnx.Rngs(0)))
    graphdef, _ = nnx.split(abstract, nnx.Param)
    uses_key = getattr(abstract, "uses_key", False)

    def init(key: jax.Array):
        _, params = nnx.split(build(sizes, rngs=nnx.Rngs(params=key)), nnx.Param)
        return nnx.to_pure_dict(params)

    def apply(params, x, key):
        module = nnx.merge(graphdef, params)
        return module(x, key=key) if uses_key else module(x)

    return Model(init, apply)
