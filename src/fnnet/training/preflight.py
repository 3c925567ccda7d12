"""Your model and loss checked on one batch before the first step: nothing silently broadcast, one-line errors.

``check_model_and_loss`` traces ``apply`` and the loss once with ``jax.eval_shape``
(shapes only: no arithmetic, nothing compiled) on a batch of the run's shape and
dtypes, and refuses, in one ``ConfigError`` line naming both shapes or dtypes:

- an output that is not one array (a tuple, a dict, None);
- for ``sse`` and ``mse``, an output whose shape is not exactly ``y``'s: the loss
  compares them element by element, and ``(N,)`` against ``(N, 1)`` would
  broadcast to an ``(N, N)`` loss that trains on the wrong thing;
- for ``cross_entropy``, labels that are not integers of shape ``(N,)`` below the
  number of classes the output has;
- a loss that does not return a float scalar;
- an error raised by your own code during the trace: the model's or the loss's
  name and the first line of its error.

Examples:
  >>> import jax.numpy as jnp, numpy as np
  >>> from fnnet.lessons.functional import Model, LOSSES
  >>> model = Model(lambda key: {"w": jnp.ones((3,))}, lambda p, x: x @ p["w"])  # (N,) out
  >>> check_model_and_loss(model, LOSSES["sse"], "sse", {"w": np.ones(3, np.float32)},
  ...                      (np.ones((8, 3), np.float32), np.ones((8, 1), np.float32)), 8, name="apply")
  Traceback (most recent call last):
  ...
  fnnet.errors.ConfigError: apply returns shape (8,) but y is (8, 1): 'sse' compares them element by element and would broadcast them to (8, 8); make them the same shape
"""

from __future__ import annotations

import jax
import numpy as np

from fnnet.errors import ConfigError
from fnnet.model import call_apply


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}".rstrip(": ")


def _abstract(a, rows: int | None = None) -> jax.ShapeDtypeStruct:
    shape = tuple(np.shape(a))
    if rows is not None:
        shape = (rows, *shape[1:])
    return jax.ShapeDtypeStruct(shape, np.asarray(a).dtype if not hasattr(a, "dtype") else a.dtype)


def model_output(model, params, x, rows: int, *, name: str) -> jax.ShapeDtypeStruct:
    """The shape and dtype ``apply`` returns on a batch of ``rows`` rows; a ConfigError line if it fails or is not one array."""
    abstract_params = jax.tree.map(_abstract, params)
    try:
        out = jax.eval_shape(lambda p, xb: call_apply(model, p, xb, jax.random.key(0)), abstract_params,
                             _abstract(x, rows))
    except ConfigError:
        raise
    except Exception as err:  # the user's own forward pass failed: say so in one line, with its own words
        raise ConfigError(f"{name} failed on a batch x{(rows, *np.shape(x)[1:])}: {_first_line(err)}") from err
    if not isinstance(out, jax.ShapeDtypeStruct):
        kind = type(out).__name__ if not isinstance(out, (tuple, list)) else f"a {type(out).__name__} of {len(out)}"
        raise ConfigError(f"{name} returns {kind}; expected one array (rows, outputs)")
    return out


def check_model_and_loss(model, loss, loss_name: str, params, data, rows: int, *, name: str) -> None:
    """Trace ``model`` and ``loss`` once on a batch of ``rows`` rows of ``data``; raise one ConfigError line if wrong."""
    x, y = data
    out = model_output(model, params, x, rows, name=name)
    y_abstract = _abstract(y, rows)
    if loss_name in ("sse", "mse"):
        if out.shape != y_abstract.shape:
            try:
                wide = np.broadcast_shapes(out.shape, y_abstract.shape)
                what = f"would broadcast them to {wide}"
            except ValueError:
                what = "cannot pair them"
            raise ConfigError(f"{name} returns shape {out.shape} but y is {y_abstract.shape}: {loss_name!r} compares "
                              f"them element by element and {what}; make them the same shape")
    elif loss_name == "cross_entropy":
        _check_labels(out, y, name)
    _check_loss_value(loss, loss_name, out, y_abstract)


def _check_labels(out: jax.ShapeDtypeStruct, y, name: str) -> None:
    labels = np.asarray(y)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        got = f"shape {labels.shape}" if np.issubdtype(labels.dtype, np.integer) else "real numbers"
        raise ConfigError(f"'cross_entropy' takes integer class labels y of shape (rows,), got {got}; "
                          "for one-hot or (rows, 1) labels pass y.argmax(1) or y[:, 0]")
    if len(out.shape) != 2:
        raise ConfigError(f"'cross_entropy' needs {name} to return (rows, classes) logits, got shape {out.shape}")
    classes = out.shape[1]
    if labels.size and int(labels.max()) >= classes:
        raise ConfigError(f"labels y go up to {int(labels.max())} but {name} returns {classes} classes "
                          f"(logits {out.shape}); labels must be below {classes}")


def _check_loss_value(loss, loss_name: str, out: jax.ShapeDtypeStruct, y: jax.ShapeDtypeStruct) -> None:
    try:
        value = jax.eval_shape(loss, out, y)
    except Exception as err:  # the user's own loss failed
        raise ConfigError(f"the loss {loss_name} failed on y_pred {out.shape} and y {y.shape}: "
                          f"{_first_line(err)}") from err
    if not isinstance(value, jax.ShapeDtypeStruct) or value.shape != ():
        got = value.shape if isinstance(value, jax.ShapeDtypeStruct) else type(value).__name__
        raise ConfigError(f"the loss {loss_name} returns {got}; expected a scalar (reduce it with .sum() or .mean())")
    if not np.issubdtype(value.dtype, np.floating):
        raise ConfigError(f"the loss {loss_name} returns a {value.dtype} scalar; expected a float (its gradient "
                          "would be zero)")
