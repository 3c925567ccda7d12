"""The tutorial's ``nn.Module`` models as flax nnx modules, and their pure-function view.

Modules are built and called the nnx way (``TwoLayerNet(sizes, rngs=...)(x)``);
the training loop never holds a module, only its parameters as a plain nested
dict. ``nnx_model`` gives that functional view: ``init(key) -> params`` and
``apply(params, x, key) -> y_pred``, merging the module back inside ``apply``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Float, Int

from fnnet.data import Sizes, fast_compiled
from fnnet.errors import ConfigError
from fnnet.lessons.functional import relu

MAX_DEPTH = 3  # DynamicNet reuses its middle layer 0..MAX_DEPTH times


@fast_compiled(static_argnums=(1, 2))  # nnx draws a layer's weights eagerly, one shape at a time
def _uniform_draw(key, shape, dtype, bound):
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def _uniform(bound: float):
    def init(key, shape, dtype=jnp.float32):
        return _uniform_draw(key, tuple(shape), dtype, bound)

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


# ---------------------------------------------------------------- the sine edition


def sine_linear(sizes=None, *, rngs: nnx.Rngs) -> nnx.Sequential:
    """``sine_nn``'s model: ``Sequential(Linear(3, 1))`` over the features (x, x^2, x^3), torch's init.

    The tutorial's ``Sequential(Linear(3, 1), Flatten(0, 1))``; fnnet keeps y as
    a (rows, 1) column, so there is nothing to flatten. ``sizes`` is unused (the
    sine edition has fixed shapes).

    Examples:
      >>> sine_linear(rngs=nnx.Rngs(0))(jnp.ones((5, 3))).shape
      (5, 1)
    """
    del sizes
    return nnx.Sequential(torch_linear(3, 1, rngs=rngs))


def _scalar(rngs: nnx.Rngs) -> nnx.Param:
    return nnx.Param(jax.random.normal(rngs.params(), ()))  # torch.randn(())


class Polynomial3(nnx.Module):
    """The tutorial's ``Polynomial3(nn.Module)``: ``a + b x + c x^2 + d x^3``, four scalar parameters.

    Examples:
      >>> net = Polynomial3(rngs=nnx.Rngs(0))
      >>> net(jnp.ones((4, 1))).shape, net.a.shape
      ((4, 1), ())
    """

    def __init__(self, sizes=None, *, rngs: nnx.Rngs):
        del sizes
        self.a, self.b, self.c, self.d = (_scalar(rngs) for _ in range(4))

    def __call__(self, x: Float[Array, "rows 1"]) -> Float[Array, "rows 1"]:
        return self.a + self.b * x + self.c * x**2 + self.d * x**3


MAX_EXTRA_TERMS = 2  # the sine DynamicNet adds e x^4 and e x^5: 0, 1 or 2 of them


def draw_extra_terms(key: jax.Array) -> Int[Array, ""]:
    """How many of ``e x^4, e x^5`` the sine DynamicNet adds in the step keyed by ``key``: 0, 1 or 2.

    The tutorial's ``range(4, random.randint(4, 6))`` has 0, 1 or 2 elements,
    each as likely; here the count comes from a JAX key.

    Examples:
      >>> counts = jax.vmap(draw_extra_terms)(jax.random.split(jax.random.key(0), 60))
      >>> sorted(set(counts.tolist()))
      [0, 1, 2]
    """
    return jax.random.randint(key, (), 0, MAX_EXTRA_TERMS + 1, dtype=jnp.int32)


class SineDynamicNet(nnx.Module):
    """The sine edition's DynamicNet: a cubic plus ``e x^4`` and ``e x^5`` on some steps, one ``e`` shared.

    The weight sharing is ``e``: when both extra terms are drawn, the same
    parameter multiplies x^4 and x^5, and its gradient is the sum of both
    contributions. ``lax.switch`` picks the number of terms inside ``jit``.

    Examples:
      >>> net = SineDynamicNet(rngs=nnx.Rngs(0))
      >>> x = jnp.full((2, 1), 2.0)
      >>> bool(jnp.isclose((net.with_terms(x, 2) - net.with_terms(x, 0))[0, 0], net.e[...] * (16 + 32)))
      True
    """

    uses_key = True

    def __init__(self, sizes=None, *, rngs: nnx.Rngs):
        del sizes
        self.a, self.b, self.c, self.d, self.e = (_scalar(rngs) for _ in range(5))

    def with_terms(self, x: Float[Array, "rows 1"], extra: int) -> Float[Array, "rows 1"]:
        """The forward pass with exactly ``extra`` (a Python int, 0..2) of the terms e x^4, e x^5."""
        y = self.a + self.b * x + self.c * x**2 + self.d * x**3
        for power in range(4, 4 + extra):
            y = y + self.e * x**power
        return y

    def __call__(self, x: Float[Array, "rows 1"], *, key: jax.Array) -> Float[Array, "rows 1"]:
        branches = [functools.partial(self.with_terms, extra=k) for k in range(MAX_EXTRA_TERMS + 1)]
        return jax.lax.switch(draw_extra_terms(key), branches, x)


@dataclasses.dataclass(frozen=True)
class NnxModel:
    """The pure-function view of an nnx module: ``init(key) -> params`` and ``apply(params, x, key)``.

    ``params`` is the module's ``nnx.Param`` state as a nested dict; ``apply``
    merges it into the module's graph definition and calls the module, so the
    training loop holds plain arrays, never a module. A frozen dataclass: equal
    ``NnxModel`` objects (same builder and sizes, or the same graph definition,
    which nnx makes hashable) are one model to ``jit``, so a second run reuses
    the compiled loop without any cache of ours.

    Build one from a builder and sizes (the lessons) or from a module you made
    (``NnxModel.of(module)``, which also returns the module's parameters).

    Examples:
      >>> model = NnxModel(TwoLayerNet, Sizes(4, 10, 6, 3))
      >>> params = model.init(jax.random.key(0))
      >>> jax.tree.map(jnp.shape, params)
      {'linear1': {'bias': (6,), 'kernel': (10, 6)}, 'linear2': {'bias': (3,), 'kernel': (6, 3)}}
      >>> model.apply(params, jnp.ones((4, 10)), None).shape
      (4, 3)
      >>> mine, start = NnxModel.of(nnx.Linear(3, 2, rngs=nnx.Rngs(0)))
      >>> mine.apply(start, jnp.ones((5, 3))).shape
      (5, 2)
    """

    build: Callable[..., nnx.Module] | None = None  # build(sizes, rngs=...) -> module
    sizes: Sizes | None = None
    graphdef: Any = None  # the graph definition of a module given as it is (then build is None)
    uses_key: bool = False  # pass the step's key to the module: __call__(x, key=key)

    @classmethod
    def of(cls, module: nnx.Module) -> tuple["NnxModel", dict]:
        """``(model, params)`` for a module you built; the module itself is left unchanged.

        Only modules whose state is all ``nnx.Param`` can be trained this way
        (no dropout RNG streams or batch statistics yet): anything else raises
        ConfigError naming the first such variable.
        """
        graphdef, params, rest = nnx.split(module, nnx.Param, ...)
        others = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(rest))[0]]
        if others:
            raise ConfigError(f"fit trains modules whose state is all nnx.Param; {type(module).__name__} also holds "
                              f"{others[0]} (dropout RNGs or batch statistics are not supported yet)")
        copy = jax.tree.map(lambda a: np.array(a, copy=True), nnx.to_pure_dict(params))
        return cls(graphdef=graphdef, uses_key=bool(getattr(module, "uses_key", False))), copy

    def _graphdef(self):
        if self.graphdef is not None:
            return self.graphdef
        graphdef, _ = nnx.split(nnx.eval_shape(lambda: self.build(self.sizes, rngs=nnx.Rngs(0))), nnx.Param)
        return graphdef

    def init(self, key: jax.Array) -> dict:
        if self.build is None:
            raise ConfigError("this model was made from a module: its start is the module's own parameters")
        _, params = nnx.split(self.build(self.sizes, rngs=nnx.Rngs(params=key)), nnx.Param)
        return nnx.to_pure_dict(params)

    def apply(self, params, x, key=None):
        module = nnx.merge(self._graphdef(), params)
        return module(x, key=key) if self.uses_key else module(x)

    def module(self, params) -> nnx.Module:
        """A new module holding ``params``."""
        return nnx.merge(self._graphdef(), jax.tree.map(jnp.asarray, params))


def nnx_model(build: Callable[..., nnx.Module], sizes: Sizes) -> NnxModel:
    """The pure-function view of the module ``build(sizes, rngs=...)`` (an ``NnxModel``).

    Examples:
      >>> model = nnx_model(TwoLayerNet, Sizes(4, 10, 6, 3))
      >>> model.apply(model.init(jax.random.key(0)), jnp.ones((4, 10)), None).shape
      (4, 3)
    """
    return NnxModel(build, sizes, uses_key=bool(getattr(build, "uses_key", False)))
