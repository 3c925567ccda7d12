"""Your own model for ``fnnet.fit``: ``Model(init, apply)``, two pure functions, and how ``apply`` is called.

Examples:
  >>> import jax, jax.numpy as jnp
  >>> model = Model(lambda key: {"w": jnp.ones((3, 1))}, lambda params, x: x @ params["w"])
  >>> call_apply(model, model.init(jax.random.key(0)), jnp.ones((2, 3)), None).shape
  (2, 1)
"""

from __future__ import annotations

import inspect
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Params = dict[str, Float[Array, "..."]]


class Model(NamedTuple):
    """Your own model as two pure functions, for ``fnnet.fit``.

    ``init(key) -> params`` draws the initial parameters (any pytree of float
    arrays; may be None when you always pass ``params=``); ``apply(params, x,
    key) -> y_pred`` is the forward pass, where ``key`` is the step's PRNG key
    for models with randomness (an ``apply(params, x)`` without it is fine
    too). Keep the same two functions between runs and the compiled loop is
    reused.

    Examples:
      >>> def init(key):
      ...     return {"w": jax.random.normal(key, (3, 1))}
      >>> def apply(params, x):
      ...     return jnp.tanh(x @ params["w"])
      >>> model = Model(init, apply)
      >>> call_apply(model, model.init(jax.random.key(0)), jnp.ones((2, 3)), None).shape
      (2, 1)
    """

    init: Callable[[jax.Array], Params] | None
    apply: Callable[..., Float[Array, "batch d_out"]]


def call_apply(model, params, x, key):
    """``model.apply(params, x, key)``, or ``model.apply(params, x)`` when apply takes no key.

    ``apply`` takes the key when it has a third positional parameter that has
    no default or is named ``key`` (or ``rng``), or a ``*args``: an
    ``apply(params, x, scale=2.0)`` keeps its own default.

    Examples:
      >>> call_apply(Model(None, lambda p, x, scale=2.0: scale * x), None, 1.0, "a key")
      2.0
      >>> call_apply(Model(None, lambda p, x, key=None: key), None, 1.0, "a key")
      'a key'
    """
    apply = model.apply
    return apply(params, x, key) if _takes_key(apply) else apply(params, x)


def _takes_key(apply) -> bool:
    try:
        parameters = list(inspect.signature(apply).parameters.values())
    except (TypeError, ValueError):  # a builtin or a callable without a signature: assume the full form
        return True
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 3:
        return False
    third = positional[2]
    return third.default is third.empty or third.name in ("key", "rng")
