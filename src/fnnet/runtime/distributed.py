"""Joining several processes (hosts) into one training run, with JAX's own distributed runtime.

Every process runs the same command with its own ``process_id``;
``jax.distributed.initialize`` connects them through the coordinator (process
0's address), after which ``jax.devices()`` lists the devices of every process
and the data-parallel mesh of ``fnnet.runtime.placement.data_parallel`` spans them all. On
CPU the collectives go through gloo. Each process keeps only its own rows of a
full-batch data set; parameters are replicated.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import jax
import numpy as np

from fnnet.errors import ConfigError

ENVIRONMENT = ("FNNET_COORDINATOR", "FNNET_NUM_PROCESSES", "FNNET_PROCESS_ID")


def settings(coordinator=None, num_processes=None, process_id=None) -> tuple[str, int, int] | None:
    """The (coordinator, num_processes, process_id) of a multi-process run, from arguments or environment.

    Arguments win; missing ones are read from ``FNNET_COORDINATOR``,
    ``FNNET_NUM_PROCESSES`` and ``FNNET_PROCESS_ID``. None when no coordinator is set.

    Examples:
      >>> settings("10.0.0.1:1234", 2, 1)
      ('10.0.0.1:1234', 2, 1)
      >>> settings() is None or True
      True
    """
    coordinator = coordinator or os.environ.get("FNNET_COORDINATOR")
    if num_processes is None and os.environ.get("FNNET_NUM_PROCESSES"):
        num_processes = os.environ["FNNET_NUM_PROCESSES"]
    if process_id is None and os.environ.get("FNNET_PROCESS_ID"):
        process_id = os.environ["FNNET_PROCESS_ID"]
    if coordinator is None:
        if num_processes is not None or process_id is not None:
            raise ConfigError("--num-processes and --process-id need --coordinator HOST:PORT")
        return None
    host, _, port = str(coordinator).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    try:
        num_processes, process_id = int(num_processes), int(process_id)
    except (TypeError, ValueError):
        raise ConfigError("--coordinator needs --num-processes P and --process-id I (integers)") from None
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ConfigError(f"--process-id must be in 0..{num_processes - 1}, got {process_id}")
    return str(coordinator), num_processes, process_id


def wait_for_coordinator(coordinator: str, timeout: float) -> None:
    """Return once something listens at HOST:PORT; ConfigError after ``timeout`` seconds.

    JAX's runtime aborts the whole process (no Python exception) when it
    cannot register with the coordinator, so a process other than 0 checks
    first that the address answers at all.
    """
    host, _, port = coordinator.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise ConfigError(f"could not reach the coordinator at {coordinator} within {timeout:g} s "
                                  f"({err.strerror or err}); is process 0 running there?") from None
            time.sleep(0.25)


def initialize(coordinator: str, num_processes: int, process_id: int, timeout: int = 60) -> None:
    """Join the run: call before anything else uses JAX. A coordinator not reached in ``timeout`` s is an error."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # JAX's preemption service would take SIGTERM for itself (logging it in C++ and training on); fnnet's own
    # handler (fnnet.signals) stops every process at the same step with a checkpoint instead
    jax.config.update("jax_enable_preemption_service", False)
    if process_id != 0:
        wait_for_coordinator(coordinator, timeout)
    # If the other processes never come, JAX's runtime aborts this process with a C++ stack trace when its
    # own deadline passes. A watchdog a little before that deadline says what happened in one line instead.
    watchdog = threading.Timer(timeout, _give_up, args=(coordinator, num_processes, process_id, timeout))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=int(timeout) + 10)
    except Exception as err:  # the runtime reports an unreachable coordinator in several ways
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ConfigError(f"could not join the run through coordinator {coordinator} within {timeout} s "
                          f"(process {process_id} of {num_processes}): {first}") from None
    finally:
        watchdog.cancel()


def _give_up(coordinator: str, num_processes: int, process_id: int, timeout: int) -> None:
    print(f"fnnet: error: not all {num_processes} processes joined through coordinator {coordinator} within "
          f"{timeout} s (this is process {process_id}); start every process, or raise --init-timeout",
          file=sys.stderr, flush=True)
    os._exit(2)


def to_global(tree, sharding):
    """Host values (the same on every process) as global arrays with ``sharding``; typed keys kept typed."""
    def place(value):
        if jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key):
            return jax.random.wrap_key_data(place(jax.random.key_data(value)))
        host = np.asarray(value)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)
