"""Stricter JAX for the tests: implicit rank promotion is an error.

(Strict dtype promotion is not switched on: optax's own Adam mixes a Python
float with an int32 step count, which strict mode rejects.)"""

import gc
import itertools
import os

# One BLAS/OpenMP thread per process, set before torch or NumPy load: the suite runs one worker per core
# (pytest-xdist, -n auto in pyproject.toml) and every notebook kernel and subprocess inherits this.
# Oversubscribed OpenMP threads spin: two notebooks at once on two cores took 12.5 CPU-minutes with the
# default threads and 5 with one each. Tests that time things set their thread counts themselves.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# The young generation collected less often from here on, while collecting imports JAX, flax, torch and
# hypothesis (as the fnnet program does, fnnet.cli.program): `pytest --collect-only -n 0` took 2.9 to 3.2 s of
# CPU against 3.6 to 4.3 at Python's default thresholds.
from fnnet.cli import PROGRAM_GC_THRESHOLD  # noqa: E402  (after the thread settings: fnnet.cli imports NumPy)

gc.set_threshold(*PROGRAM_GC_THRESHOLD)

import jax
import pytest

from fnnet.data import Sizes

jax.config.update("jax_numpy_rank_promotion", "raise")

SMALL = Sizes(batch=8, d_in=20, hidden=10, d_out=3)

_counter = itertools.count()


@pytest.fixture
def key():
    """A fresh key for each test that asks for one."""
    return jax.random.key(1000 + next(_counter))


@pytest.fixture(autouse=True, scope="session")
def _private_compilation_cache(tmp_path_factory):
    """Commands the tests start keep their compiled programs in a folder of the test session's own."""
    import os

    os.environ["FNNET_CACHE_DIR"] = str(tmp_path_factory.mktemp("fnnet-jax-cache"))
    yield


@pytest.fixture
def fnnet_cli(capsys):
    """Run the ``fnnet`` command in this process: ``fnnet_cli("train", "nn", "--steps", 5) -> (code, out, err)``.

    Cheaper than a subprocess (no interpreter start, no JAX import, compiled
    programs shared); keep real subprocesses for what needs one (the console
    script, signals, several processes, a fresh device count).

    The command's compile cache ends with the command, as with a process (``tests/command.py``).
    """
    from command import run_main

    def run(*argv):
        code = run_main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def pytest_collection_finish(session):
    """Collected, with JAX, flax, optax, torch and matplotlib imported: freeze what is alive now, so that
    Python's full garbage collections stop walking these modules' hundreds of thousands of objects again and
    again. Garbage collection took about 4 % of a worker's CPU (gc.callbacks, on test_sine, test_properties and
    test_own_model) and, with the thresholds set above, takes about 1.5 % now."""
    del session
    gc.freeze()


def pytest_sessionfinish(session):
    """The process ends next: freeze what it holds, so that Python's shutdown frees it without searching it for
    cycles once more (as ``fnnet.cli.program`` does; that search took 0.35 to 0.6 s of a ``fnnet train``)."""
    del session
    gc.freeze()


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core, at most four (each holds JAX, PyTorch and a notebook kernel)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
