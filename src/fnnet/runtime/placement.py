"""Where a run's arrays live: the device, the data-parallel mesh, several processes.

``resolve_device``/``resolve_devices`` turn what the user asked for into JAX
devices (a ConfigError names what exists when the request cannot be met);
``data_parallel`` places a run's state and data on a one-axis mesh;
``host_value`` reads a (possibly global) array back on this process.

The collectives that make several processes agree (``same_outcome``,
``share_from_first``, ``check_same_run`` ...) live in ``fnnet.runtime.collective``;
they are importable from here too, where ``fnnet.cli`` looks for them.
"""

from __future__ import annotations

import jax
import numpy as np

from fnnet.data import check_positive_int
from fnnet.errors import ConfigError
from fnnet.runtime.collective import (check_same_run, peer_lost, process_values, same_outcome,  # noqa: F401
                                      share_from_first)


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
