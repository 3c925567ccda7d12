"""Sizes of the problem and the random regression data it is fitted to.

Everything random in a run comes from one seed: ``run_keys(seed)`` splits it into
the key for the data, the key for the initial weights and the key the training
loop folds the step number into. Same seed, same arrays, bit for bit.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
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


MAX_SEED = 2**64 - 1  # a seed is 64 bits: the two 32-bit words of a threefry key
MAX_STEPS = 2**31 - 1  # the step counter is int32


def check_seed(seed) -> int:
    """Return ``seed`` as an int if it is an integer in 0 .. 2**64-1, else raise ConfigError.

    Examples:
      >>> check_seed(2**64 - 1) == 2**64 - 1
      True
      >>> check_seed(2**64)
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: seed must be an integer from 0 to 2**64-1, got 18446744073709551616
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer from 0 to 2**64-1, got {seed!r}")
    return int(seed)


def seed_key(seed: int) -> jax.Array:
    """The root key of ``seed``: ``jax.random.key(seed)`` below 2**32, its two 32-bit words above.

    (Without 64-bit JAX, ``jax.random.key`` keeps only the low 32 bits of a
    seed, so seeds 7 and 2**32 + 7 would draw the same numbers.)

    Examples:
      >>> bool((jax.random.key_data(seed_key(7)) == jax.random.key_data(jax.random.key(7))).all())
      True
      >>> jax.random.key_data(seed_key(2**32 + 7)).tolist()
      [1, 7]
    """
    seed = check_seed(seed)
    if seed < 2**32:
        return jax.random.key(seed)
    key = jax.random.key(0)
    if jax.random.key_data(key).shape != (2,):  # another PRNG implementation: no 2-word layout to fill
        raise ConfigError(f"seed {seed} needs more than 32 bits; this PRNG implementation takes seeds below 2**32")
    return jax.random.wrap_key_data(np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32))


def run_keys(seed: int) -> RunKeys:
    """Split ``seed`` (0 .. 2**64-1; ConfigError otherwise) into the data, init and training keys of a run.

    Examples:
      >>> keys = run_keys(0)
      >>> bool((jax.random.key_data(keys.data) != jax.random.key_data(keys.init)).any())
      True
    """
    return RunKeys(*jax.random.split(seed_key(seed), 3))


def check_steps(steps, name: str = "steps") -> int:
    """Return ``steps`` if it is a positive integer at most 2**31-1 (the int32 step counter), else ConfigError."""
    steps = check_positive_int(name, steps)
    if steps > MAX_STEPS:
        raise ConfigError(f"{name} must be at most {MAX_STEPS} (the step counter is int32), got {steps}")
    return steps


def physical_memory() -> int | None:
    """Bytes of memory this machine has, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(sizes: Sizes, runs: int = 1, steps: int = 0) -> None:
    """ConfigError if ``runs`` runs at ``sizes`` (of ``steps`` losses each) clearly cannot fit in memory.

    Counts float32 data, parameters with two optimizer slots, a few hidden
    activations and the losses, per run; a rough lower bound, to refuse absurd
    sizes before allocating.

    Examples:
      >>> try:
      ...     check_memory(Sizes(), runs=10**12)
      ... except ConfigError as err:
      ...     print(str(err).split(" need")[0])
      1000000000000 runs at sizes (64, 1000, 100, 10)
    """
    n, d, h, o = sizes
    need = runs * (4 * (n * d + n * o + 3 * (d * h + h * h + h * o) + 6 * n * h) + 4 * steps)
    have = physical_memory()
    if have is not None and need > have:
        what = f"{runs} runs at sizes" if runs > 1 else "sizes"
        raise ConfigError(f"{what} {tuple(sizes)} need at least {need / 2**30:.0f} GiB; "
                          f"this machine has {have / 2**30:.0f} GiB")


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


FAST_COMPILE = {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False}
"""XLA options for one-off programs (drawing data, weights and schedules), which run once, so only their
compile time counts: optimization level 1 and, on CPU, XLA's older elemental emitter instead of its fusion
emitters compile a lesson's init about 2.5x faster than the default options (the two together 30 % faster
than level 1 alone), and draw exactly the same numbers (tests/test_lessons.py checks four models' inits bit
for bit against the default options; level 0 would change some by an ulp). Only XLA's CPU compiler reads
the second."""


def fast_compiled(fun=None, **jit_kwargs):
    """``fun`` compiled with ``FAST_COMPILE`` when called on concrete arrays (a decorator).

    Called while another function is traced (``init_params``, a training step),
    ``fun`` runs as it is and becomes part of that program, compiled with its
    options: JAX takes compiler options on the outermost ``jit`` only.

    Examples:
      >>> draw = fast_compiled(lambda key: jax.random.normal(key, (2, 3)))
      >>> bool((draw(jax.random.key(0)) == jax.jit(lambda k: draw(k))(jax.random.key(0))).all())
      True
    """
    if fun is None:
        return functools.partial(fast_compiled, **jit_kwargs)
    compiled = jax.jit(fun, compiler_options=FAST_COMPILE, **jit_kwargs)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs))):
            return fun(*args, **kwargs)
        return compiled(*args, **kwargs)

    return call


@functools.partial(jax.jit, static_argnames="sizes", compiler_options=FAST_COMPILE)  # one compiled call
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
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype.name == "bfloat16"):
            raise ConfigError(f"data: {name} must hold real numbers, got dtype {a.dtype}")
        if a.size == 0:
            raise ConfigError(f"data: {name} is empty (shape {a.shape})")
        check_fits_memory(f"data: {name}", a.shape, a.dtype)
        biggest = _largest_magnitude(a)
        if not math.isfinite(biggest):
            raise ConfigError(f"data: {name} contains NaN or infinity")
        if biggest > FLOAT32_MAX:
            raise ConfigError(f"data: {name} holds values up to {biggest:.3g}, beyond float32's range "
                              f"({FLOAT32_MAX:.3g}); scale it down")
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


FLOAT32_MAX = float(np.finfo(np.float32).max)
_ROWS_AT_ONCE = 1 << 20  # elements looked at per slice when scanning data, so a scan allocates little


def _largest_magnitude(a: np.ndarray) -> float:
    """max |a| (nan if any is nan), a slice at a time: a memory-mapped array is never copied whole."""
    flat = a.reshape(-1) if a.flags.c_contiguous else a
    if flat.ndim != 1:
        flat = np.ascontiguousarray(a).reshape(-1)
    if np.issubdtype(a.dtype, np.integer):
        return float(max(abs(int(flat.max())), abs(int(flat.min()))))
    biggest = 0.0
    for start in range(0, flat.size, _ROWS_AT_ONCE):
        part = np.abs(flat[start:start + _ROWS_AT_ONCE])
        if np.isnan(part).any():
            return math.nan
        biggest = max(biggest, float(part.max()))
    return biggest


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (``MemAvailable``), else the machine's total, or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return physical_memory()


def check_fits_memory(what: str, shape, dtype) -> None:
    """ConfigError if an array of ``shape`` and ``dtype`` would not fit in the memory free now."""
    need = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    have = available_memory()
    if have is not None and need > have:
        raise ConfigError(f"{what} of shape {tuple(shape)} ({np.dtype(dtype)}) needs {need / 2**30:.1f} GiB; "
                          f"only {have / 2**30:.1f} GiB of memory is free")


def check_lr(lr, dtype="float32") -> float:
    """Return ``lr`` as a float if it is a finite positive number that ``dtype`` holds, else raise ConfigError.

    A learning rate that rounds to infinity or to zero (or a subnormal) in
    ``dtype`` is refused: it would diverge at once or train nothing.

    Examples:
      >>> check_lr(1e-4)
      0.0001
      >>> check_lr(1e-320)
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: lr 1e-320 underflows float32 (its smallest normal number is 1.2e-38)
    """
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise ConfigError(f"lr must be a positive number, got {lr!r}")
    if not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"lr must be a finite positive number, got {lr}")
    info = np.finfo(dtype)
    if lr > float(info.max):
        raise ConfigError(f"lr {lr} overflows {info.dtype} (its largest number is {float(info.max):.2g})")
    if lr < float(info.tiny):
        raise ConfigError(f"lr {lr} underflows {info.dtype} (its smallest normal number is {float(info.tiny):.2g})")
    return float(lr)


_KINDS = (("S_ISFIFO", "a FIFO (named pipe)"), ("S_ISSOCK", "a socket"), ("S_ISCHR", "a character device"),
          ("S_ISBLK", "a block device"), ("S_ISDIR", "a folder"))


def _check_kind(path: str, expected: str) -> None:
    """ConfigError when ``path`` exists but is not what ``--data`` reads (a FIFO, a socket, a device; a folder
    where a file is expected), naming what it is; one line when the system cannot look at it (a name over
    255 bytes). A missing path passes: the caller says "no such file".

    Examples:
      >>> import tempfile
      >>> _check_kind(tempfile.mkdtemp(), "a regular file")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: --data: '...' is a folder, not a regular file
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as err:
        raise ConfigError(f"--data: {path!r}: {err.strerror or err} (the system could not look at this path)") from None
    if stat.S_ISREG(mode) or (stat.S_ISDIR(mode) and "folder" in expected):
        return
    kind = next((words for test, words in _KINDS if getattr(stat, test)(mode)), "something else")
    raise ConfigError(f"--data: {path!r} is {kind}, not {expected}")


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
    _check_kind(path, "a regular file")
    if not os.path.isfile(path):
        raise ConfigError(f"--data: no such file {path!r}")
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"--data: {path!r} is not a .npz file (not a zip archive)")
    try:
        _check_npz_members(path)  # declared shapes and inflated sizes, before anything is decompressed
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


MAX_INFLATE = 100  # a member of a .npz may inflate at most this many times its stored size ...
INFLATE_FLOOR = 64 * 2**20  # ... once it is over 64 MiB (real data never compresses 100:1; a zip bomb does)


def _npy_header(f, what: str):
    """``(shape, dtype, header_bytes)`` of the .npy stream ``f``, read without reading the array."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(f)
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError) as err:
        raise ConfigError(f"--data: {what} is not a readable .npy array ({err})") from None
    if dtype.hasobject:
        raise ConfigError(f"--data: {what} holds Python objects (dtype {dtype}); fnnet reads numbers only, never pickles")
    return shape, dtype, f.tell()


def _check_npz_members(path: str) -> None:
    """ConfigError if ``x`` or ``y`` in the .npz at ``path`` would not fit in memory or inflates like a zip bomb."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        for name in ("x", "y"):
            info = members.get(f"{name}.npy") or members.get(name)
            if info is None:
                continue  # load_npz names the missing array
            what = f"{name} in {path!r}"
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(
                    INFLATE_FLOOR, MAX_INFLATE * max(info.compress_size, 1)):
                raise ConfigError(f"--data: {what} inflates from {info.compress_size / 2**20:.1f} MiB to "
                                  f"{info.file_size / 2**20:.0f} MiB (over {MAX_INFLATE}x); refused as a possible "
                                  "zip bomb: save it with np.savez (uncompressed) or as a folder of .npy files")
            with archive.open(info) as f:
                shape, dtype, header = _npy_header(f, what)
            check_fits_memory(f"--data: {what}", shape, dtype)
            declared = math.prod(int(n) for n in shape) * dtype.itemsize
            if info.file_size != header + declared:
                raise ConfigError(f"--data: {what} declares shape {tuple(shape)} ({declared} bytes) but holds "
                                  f"{info.file_size - header} bytes; the file is damaged")


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
    _check_kind(path, "a regular file or a folder")
    if os.path.isdir(path):
        arrays = []
        for name in ("x", "y"):
            file = os.path.join(path, f"{name}.npy")
            _check_kind(file, "a regular file")
            if not os.path.isfile(file):
                raise ConfigError(f"--data: folder {path!r} has no {name}.npy")
            try:
                with open(file, "rb") as f:  # the header first: objects and absurd shapes are refused unread
                    _npy_header(f, repr(file))
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
