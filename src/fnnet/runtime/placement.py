"""Where a run's arrays live: the device, the data-parallel mesh, several processes.

``resolve_device``/``resolve_devices`` turn what the user asked for into JAX
devices (a ConfigError names what exists when the request cannot be met);
``data_parallel`` places a run's state and data on a one-axis mesh;
``host_value`` reads a (possibly global) array back on this process.
"""

from __future__ import annotations

import hashlib
import json

import jax
import numpy as np

from fnnet.data import check_positive_int
from fnnet.errors import ConfigError


def resolve_device(platform: str) -> jax.Device:
    """The first device of ``platform`` (``cpu``, ``gpu`` or ``tpu``); ConfigError if there is none.

    Examples:
      >>> resolve_device("cpu").platform
      'cpu'
    """
    if platform not in ("cpu", "gpu", "tpu"):
        raise ConfigError(f"device must be one of cpu, gpu, tpu; got {platform!r}")
    try:
        return jax.devices(platform)[0]
    except RuntimeError:
        found = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise ConfigError(f"no {platform} device is available here (JAX sees: {found})") from None


def resolve_devices(devices) -> list:
    """The devices a run uses: ``None`` or 1 -> the default device; N -> the first N; ``"all"`` -> every one.

    When several processes have joined (``fnnet.distributed``), a run always
    uses every device of every process.
    """
    available = jax.devices()
    if jax.process_count() > 1:
        return available
    if devices is None:
        return available[:1]
    if devices == "all":
        return available
    n = check_positive_int("devices", devices)
    if n > len(available):
        raise ConfigError(f"asked for {n} devices but JAX sees {len(available)} "
                          f"({', '.join(sorted({d.platform for d in available}))})")
    return available[:n]


def data_parallel(devices: list, state, batch, minibatches: bool, local_data: bool = False):
    """Place a run on ``devices`` for data-parallel training; returns ``(state, batch, batch_sharding)``.

    A one-axis ``Mesh`` ("data") over the devices: parameters and optimizer
    state replicated, each step's rows split along the axis. ``jit`` with
    these shardings (GSPMD) was chosen over ``shard_map`` + ``pmean``: the
    training step stays the single-device code, and XLA inserts the all-reduce
    of the gradients (a sum over the sharded batch axis) where the matmuls
    contract over it. With minibatches the data set is kept whole on every
    device and each step's gathered rows are split; without, the rows are
    split once, up front. With several processes and ``local_data`` each
    process supplies only its own rows.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec("data"))
    if jax.process_count() > 1:  # several processes: each supplies the shards its own devices hold
        from fnnet.runtime.distributed import to_global

        state = to_global(state, replicated)
        if local_data:  # this process holds only its rows: they become its devices' shards of the data
            batch = tuple(jax.make_array_from_process_local_data(split, np.asarray(a)) for a in batch)
            return state, batch, None
        return state, to_global(tuple(batch), replicated if minibatches else split), split if minibatches else None
    state = jax.device_put(state, replicated)
    batch = jax.device_put(tuple(batch), replicated if minibatches else split)
    return state, batch, split if minibatches else None


def host_value(array) -> np.ndarray:
    """An array's value on this process (a replicated global array is read from a local copy)."""
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    return np.asarray(array.addressable_data(0))


def peer_lost(err: BaseException) -> str | None:
    """When ``err`` is the runtime's report that another process of this run is gone, a one-line reason.

    With several processes, a peer that dies breaks the next cross-process
    sum (gloo: "Connection reset by peer"): JAX raises ``JaxRuntimeError``
    here at once. Waiting for anything else would be worse: at exit JAX's
    shutdown barrier waits out the dead peer's heartbeat (about 100 s) and
    then aborts the process with pages of C++ log.
    """
    if type(err).__name__ != "JaxRuntimeError" or jax.process_count() <= 1:
        return None
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:200]


def process_values(value: int) -> np.ndarray:
    """Every process's ``value`` (a small integer), in process order, gathered through a collective.

    Every process must call it at the same point of the run. With one process it
    is just ``[value]``.

    Examples:
      >>> process_values(15).tolist()
      [15]
    """
    if jax.process_count() == 1:
        return np.array([int(value)])
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.int32(value))).reshape(-1)


def same_outcome(error: BaseException | None, what: str) -> None:
    """Raise ``error`` where it happened; with several processes, make the others stop there too.

    Process 0 alone does some things for the run (it owns the checkpoint
    folder). Every process calls this at the same point with what went wrong
    on it (None if nothing did), so when one failed the others stop with one
    line naming it, instead of going on and waiting forever for it.

    Examples:
      >>> same_outcome(None, "open the checkpoint folder")  # nothing failed: nothing happens
    """
    failed = process_values(error is not None)
    if error is not None:
        raise error
    if failed.any():
        raise ConfigError(f"process {int(np.argmax(failed))} could not {what} (see its error); "
                          f"process {jax.process_index()} stops too")


def share_from_first(tree):
    """Process 0's values of ``tree`` (NumPy arrays), on every process; the others pass arrays of the same shapes.

    Examples:
      >>> share_from_first({"step": np.int32(7)})["step"].tolist()
      7
    """
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def check_same_run(record: dict) -> None:
    """ConfigError on every process unless all processes were started with the same run configuration.

    Each process hashes ``record`` and the hashes are gathered through the
    coordinator, so a process started with other settings (say another
    ``--steps``) stops every process at the start with one line, instead of
    training apart and then waiting forever for the others at the end.
    """
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).digest(), np.uint8)
    every = np.asarray(multihost_utils.process_allgather(digest))
    differ = [i for i in range(len(every)) if not np.array_equal(every[i], every[0])]
    if differ:
        raise ConfigError(f"process {differ[0]} was started with other settings than process 0 (their run "
                          "configurations differ); start every process with the same command")
