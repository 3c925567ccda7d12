"""Sizes of the problem and the random regression data it is fitted to.

Everything random in a run comes from one seed: ``run_keys(seed)`` splits it into
the key for the data, the key for the initial weights and the key the training
loop folds the step number into. Same seed, same arrays, bit for bit.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from fnnet.errors import ConfigError

Batch = tuple[Float[Array, "batch d_in"], Float[Array, "batch d_out"]]


class Sizes(NamedTuple):
    """Sizes of the two-layer problem; the defaults are the tutorial's.

    Examples:
      >>> Sizes()
      Sizes(batch=64, d_in=1000, hidden=100, d_out=10)
      >>> Sizes(batch=4, d_in=10, hidden=6, d_out=3).hidden
      6
    """

    batch: int = 64  # N: rows of x and y
    d_in: int = 1000  # D_in: features of x
    hidden: int = 100  # H: width of the hidden layer
    d_out: int = 10  # D_out: columns of y


class RunKeys(NamedTuple):
    """The three independent keys one seed gives a run."""

    data: jax.Array  # draws x and y
    init: jax.Array  # draws the initial weights
    train: jax.Array  # step t uses fold_in(train, t)


def run_keys(seed: int) -> RunKeys:
    """Split ``seed`` into the data, init and training keys of a run.

    Examples:
      >>> keys = run_keys(0)
      >>> bool((jax.random.key_data(keys.data) != jax.random.key_data(keys.init)).any())
      True
    """
    return RunKeys(*jax.random.split(jax.random.key(seed), 3))


def check_positive_int(name: str, value) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_sizes(sizes) -> Sizes:
    """Validate ``sizes`` (a Sizes or a 4-tuple of positive ints) and return a Sizes.

    Examples:
      >>> check_sizes((4, 10, 6, 3))
      Sizes(batch=4, d_in=10, hidden=6, d_out=3)
      >>> check_sizes((4, 0, 6, 3))
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: sizes.d_in must be a positive integer, got 0
    """
    if isinstance(sizes, Sizes):
        fields = sizes
    elif isinstance(sizes, (tuple, list)) and len(sizes) == len(Sizes._fields):
        fields = Sizes(*sizes)
    else:
        raise ConfigError(
            f"sizes must be Sizes(batch, d_in, hidden, d_out) or a 4-tuple, got {sizes!r}"
        )
    return Sizes(*(check_positive_int(f"sizes.{n}", v) for n, v in zip(Sizes._fields, fields)))


@functools.partial(jax.jit, static_argnames="sizes")  # one compiled call, not one per eager op
def make_data(sizes: Sizes, *, key: jax.Array) -> Batch:
    """Draw the tutorial's data: ``x`` and ``y`` standard normal, float32.

    Examples:
      >>> x, y = make_data(Sizes(4, 10, 6, 3), key=jax.random.key(0))
      >>> x.shape, y.shape, x.dtype
      ((4, 10), (4, 3), dtype('float32'))
    """
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (sizes.batch, sizes.d_in), jnp.float32)
    y = jax.random.normal(ky, (sizes.batch, sizes.d_out), jnp.float32)
    return x, y


def check_data(data, sizes: Sizes | None, default_hidden: int) -> tuple[Batch, Sizes]:
    """Validate user data ``(x, y)`` and return it (as NumPy arrays, dtype kept) with its Sizes.

    ``x`` must be (N, D_in), ``y`` (N, D_out), both real and finite. When ``sizes``
    is given its batch, d_in and d_out must match; otherwise they are read from
    the data and ``default_hidden`` fills the hidden width.

    Examples:
      >>> (x, y), s = check_data((np.ones((5, 3)), np.zeros((5, 2))), None, 7)
      >>> s
      Sizes(batch=5, d_in=3, hidden=7, d_out=2)
      >>> check_data((np.ones((5, 3)), np.zeros((4, 2))), None, 7)
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: data: x has 5 rows but y has 4; expected the same number
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ConfigError(f"data must be a pair (x, y) of 2-D arrays, got {type(data).__name__}")
    arrays = []
    for name, a in zip("xy", data):
        try:
            a = np.asarray(a)
        except Exception as err:  # anything numpy cannot read as an array
            raise ConfigError(f"data: {name} is not an array ({err})") from None
        if a.ndim != 2:
            raise ConfigError(f"data: {name} must be 2-D (rows, features), got shape {a.shape}")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ConfigError(f"data: {name} must hold real numbers, got dtype {a.dtype}")
        if a.size == 0:
            raise ConfigError(f"data: {name} is empty (shape {a.shape})")
        if not np.isfinite(a).all():
            raise ConfigError(f"data: {name} contains NaN or infinity")
        arrays.append(a)
    x, y = arrays
    if x.shape[0] != y.shape[0]:
        raise ConfigError(
            f"data: x has {x.shape[0]} rows but y has {y.shape[0]}; expected the same number"
        )
    found = Sizes(x.shape[0], x.shape[1], default_hidden if sizes is None else sizes.hidden, y.shape[1])
    if sizes is not None and found != sizes:
        raise ConfigError(
            f"data shapes x{x.shape} y{y.shape} do not match sizes "
            f"(batch={sizes.batch}, d_in={sizes.d_in}, d_out={sizes.d_out})"
        )
    return (x, y), found


def check_lr(lr) -> float:
    """Return ``lr`` as a float if it is a finite positive number, else raise ConfigError."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise ConfigError(f"lr must be a positive number, got {lr!r}")
    if not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"lr must be a finite positive number, got {lr}")
    return float(lr)


def load_npz(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a data set from a ``.npz`` file holding arrays ``x`` (rows, D_in) and ``y`` (rows, D_out).

    Only ``.npz`` is read (``np.savez(path, x=x, y=y)`` writes one); pickled
    objects are refused. Shapes and values are checked by ``check_data``.

    Examples:
      >>> import tempfile, os
      >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
      >>> np.savez(path, x=np.ones((5, 3)), y=np.zeros((5, 1)))
      >>> [a.shape for a in load_npz(path)]
      [(5, 3), (5, 1)]
    """
    import os
    import zipfile

    path = os.fspath(path)
    if not path.lower().endswith(".npz"):
        raise ConfigError(f"--data: expected a .npz file with arrays 'x' and 'y', got {path!r}")
    if not os.path.isfile(path):
        raise ConfigError(f"--data: no such file {path!r}")
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"--data: {path!r} is not a .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            missing = [k for k in ("x", "y") if k not in names]
            if missing:
                raise ConfigError(f"--data: {path!r} has no array {missing[0]!r} (it has: {', '.join(names) or 'none'})")
            return np.asarray(archive["x"]), np.asarray(archive["y"])
    except ConfigError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ConfigError(f"--data: {path!r} is not a readable .npz file ({err})") from None


def load_data(path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``x`` and ``y`` from a ``.npz`` file, or from a folder holding ``x.npy`` and ``y.npy``.

    A folder's arrays are memory-mapped, so taking some of their rows (as each
    process of a multi-host run does, see ``process_rows``) reads only those
    rows from disk.

    Examples:
      >>> import tempfile, os
      >>> folder = tempfile.mkdtemp()
      >>> np.save(os.path.join(folder, "x.npy"), np.ones((6, 2))); np.save(os.path.join(folder, "y.npy"), np.ones((6, 1)))
      >>> [a.shape for a in load_data(folder)]
      [(6, 2), (6, 1)]
    """
    import os

    path = os.fspath(path)
    if os.path.isdir(path):
        arrays = []
        for name in ("x", "y"):
            file = os.path.join(path, f"{name}.npy")
            if not os.path.isfile(file):
                raise ConfigError(f"--data: folder {path!r} has no {name}.npy")
            try:
                arrays.append(np.load(file, mmap_mode="r", allow_pickle=False))
            except (OSError, ValueError) as err:
                raise ConfigError(f"--data: {file!r} is not a readable .npy file ({err})") from None
        return arrays[0], arrays[1]
    if not path.lower().endswith(".npz"):
        raise ConfigError(f"--data: expected a .npz file or a folder with x.npy and y.npy, got {path!r}")
    return load_npz(path)


def process_rows(x, y, process: int, processes: int):
    """The rows of ``x`` and ``y`` that process ``process`` of ``processes`` trains on: an even, contiguous share.

    Examples:
      >>> x = np.arange(8)[:, None]
      >>> process_rows(x, x, 1, 2)[0][:, 0].tolist()
      [4, 5, 6, 7]
    """
    rows = np.shape(x)[0]
    if np.shape(y)[0] != rows:
        raise ConfigError(f"data: x has {rows} rows but y has {np.shape(y)[0]}; expected the same number")
    if rows % processes:
        raise ConfigError(f"data: {rows} rows do not split evenly over {processes} processes")
    share = rows // processes
    return x[process * share:(process + 1) * share], y[process * share:(process + 1) * share]
