"""What trained, written into the run's record: an optimizer's hyperparameters, a schedule's values, a loss's code.

A resume compares these with the checkpoint's and refuses a change in one line,
so ``optax.adam(1e-3)`` then ``optax.adam(1e-1)``, or two different lambdas both
called ``<lambda>``, cannot mix in one run. Each fingerprint is the same in every
process and every run of the same code (no object ids, addresses or file paths).

Limits: a callable loss is known by its own code object (its bytecode, constants
and the names it reads), not by the helpers it calls nor the globals it reads; an
optax transformation by the numbers, arrays and functions in the closures of its
``update`` (optax keeps no record of its hyperparameters); a schedule by its
values at ``SCHEDULE_STEPS``. What cannot be read is said so in the fingerprint
(``"unreadable: ..."``), and a resume then goes on with one line naming it.

Examples:
  >>> import optax
  >>> optimizer_fingerprint(optax.adam(1e-3)) == optimizer_fingerprint(optax.adam(1e-3))
  True
  >>> optimizer_fingerprint(optax.adam(1e-3)) == optimizer_fingerprint(optax.adam(1e-1))
  False
  >>> loss_fingerprint(lambda p, y: ((p - y) ** 2).sum()) == loss_fingerprint(lambda p, y: abs(p - y).sum())
  False
"""

from __future__ import annotations

import functools
import hashlib
import numbers
import types

import numpy as np

SCHEDULE_STEPS = (0, 1, 10, 100, 1000, 10000)
UNREADABLE = "unreadable"
_DEPTH = 12  # how deep closures are followed (optax nests a few levels: chain -> wrapper -> transformation)


def _digest(parts: list) -> str:
    return "sha256:" + hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def schedule_values(schedule) -> tuple[float, ...]:
    """A schedule's rates at ``SCHEDULE_STEPS``, as Python floats.

    Examples:
      >>> import optax
      >>> schedule_values(optax.linear_schedule(1.0, 0.0, 100))
      (1.0, 0.99, 0.9, 0.0, 0.0, 0.0)
    """
    return tuple(float(f"{float(np.asarray(schedule(step))):.7g}") for step in SCHEDULE_STEPS)  # float32's digits


def _code(code: types.CodeType) -> list:
    """A code object as plain data: bytecode, constants (nested code too), names; no file or line."""
    consts = [_code(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return [code.co_name, code.co_code.hex(), consts, list(code.co_names), list(code.co_varnames)]


def loss_fingerprint(loss) -> str:
    """A named loss (a string) as itself; a function by its code object; else ``"unreadable: ..."``."""
    if isinstance(loss, str):
        return loss
    function = getattr(loss, "__wrapped__", loss)
    if isinstance(function, functools.partial):
        return _digest(["partial", loss_fingerprint(function.func), _values(function.args, 0),
                        _values(sorted(function.keywords.items()), 0)])
    code = getattr(function, "__code__", None)
    if code is None:
        return f"{UNREADABLE}: {type(loss).__name__} has no code object"
    defaults = _values(function.__defaults__ or (), 0)
    return _digest([_code(code), defaults])


def _values(value, depth: int) -> list:
    """The numbers, arrays, strings and functions inside ``value``, as plain data (recursing into closures)."""
    if depth > _DEPTH:
        return ["..."]
    if value is None or isinstance(value, (bool, str)):
        return [value]
    if isinstance(value, numbers.Number):
        return [repr(float(value)) if isinstance(value, float) else repr(value)]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        a = np.asarray(value)
        return [str(a.dtype), list(a.shape), a.tobytes().hex()[:64] if a.size <= 64 else _digest([a.tobytes().hex()])]
    if isinstance(value, (tuple, list)):
        return [_values(v, depth + 1) for v in value]
    if isinstance(value, functools.partial):
        return ["partial", _values(value.func, depth + 1), _values(value.args, depth + 1),
                _values(sorted(value.keywords.items()), depth + 1)]
    function = getattr(value, "__wrapped__", value)  # jax.jit and functools.wraps keep the original here
    if isinstance(function, types.FunctionType):
        cells = [_cell(c) for c in function.__closure__ or ()]
        name = function.__qualname__.split(".<locals>")[0]
        return [name, _values(function.__defaults__ or (), depth + 1), [_values(c, depth + 1) for c in cells]]
    if hasattr(value, "init") and hasattr(value, "update"):  # an optax GradientTransformation
        return ["transformation", _values(value.update, depth + 1)]
    if callable(value):
        return [type(value).__qualname__]
    return [type(value).__qualname__]


def _cell(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell (a closure over a name not yet bound)
        return None


def optimizer_fingerprint(optimizer, lr=None) -> str:
    """An optax transformation's hyperparameters (its update's closures), a named optimizer with its rate or
    schedule; ``"unreadable: ..."`` where they cannot be read."""
    if isinstance(optimizer, str):
        rate = schedule_values(lr) if callable(lr) and not isinstance(lr, numbers.Real) else lr
        return _digest([optimizer, repr(rate)])
    try:
        return _digest(_values(optimizer, 0))
    except Exception as err:  # a closure holding something we cannot turn into plain data
        return f"{UNREADABLE}: {type(err).__name__}"


def _closure_cells(function, depth: int = 0):
    """``(name, value)`` of every closure cell under ``function``, depth first (names from ``co_freevars``)."""
    function = getattr(function, "__wrapped__", function)
    if depth > _DEPTH or not isinstance(function, types.FunctionType):
        return
    for name, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
        value = _cell(cell)
        yield name, value
        inner = value if isinstance(value, (tuple, list)) else (value,)
        for item in inner:
            yield from _closure_cells(getattr(item, "update", item), depth + 1)


def optax_rate(transformation):
    """The learning rate inside an optax transformation: ``(rate, schedule)``, one of them None; ``(None, None)``
    when it cannot be read. Found in optax's closures: ``learning_rate`` (a number or a schedule) or
    ``scale``'s ``step_size`` (minus the rate).

    Examples:
      >>> import optax
      >>> optax_rate(optax.adam(1e-3))
      (0.001, None)
      >>> rate, schedule = optax_rate(optax.sgd(optax.constant_schedule(0.5)))
      >>> rate, float(schedule(3))
      (None, 0.5)
    """
    for name, value in _closure_cells(getattr(transformation, "update", None)):
        if name == "learning_rate" and callable(value):
            return None, value
        if name == "learning_rate" and isinstance(value, numbers.Real):
            return float(value), None
        if name == "step_size" and isinstance(value, numbers.Real):
            return -float(value), None
    return None, None
