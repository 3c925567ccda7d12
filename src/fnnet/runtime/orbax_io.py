"""What a checkpoint holds, and orbax's reading and writing of it.

A checkpoint (orbax ``CheckpointManager``: each save is written under a
temporary name and renamed when complete, in the background, keeping the
newest few) has two items: ``state``, the run's arrays as a flat dict
(``written_tree``: parameters and optimizer state as numbered leaves, the key as
key data, the step, the losses so far), and ``meta`` (JSON: the step, the run's
configuration and the SHA-256 of ``state``, ``digest``).

Examples:
  >>> import numpy as np
  >>> from fnnet.training.core import TrainState
  >>> state = TrainState({"w": np.ones(2, np.float32)}, (), None, 3)
  >>> tree = written_tree(state, np.zeros(3, np.float32))
  >>> sorted(tree), sorted(tree["leaves"])
  (['leaves', 'losses', 'step'], ['0000'])
  >>> len(digest(tree))
  64
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from fnnet.runtime.orbax_quirks import import_orbax


def digest(tree: dict) -> str:
    """The SHA-256 of every array of ``tree``, with its shape and dtype (saved in ``meta``, checked on restore)."""
    h = hashlib.sha256()
    for leaf in [*jax.tree.leaves(tree), np.zeros(0)]:  # the empty array: the checksums saved so far include it
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def written_tree(state, losses) -> dict:
    """What is written: parameters and optimizer state as a flat dict of leaves, key data, step, losses."""
    from fnnet.runtime.placement import host_value

    def local(leaf):  # several processes: a leaf is replicated over all of them; process 0 writes its own copy
        return leaf if getattr(leaf, "is_fully_addressable", True) else host_value(leaf)

    leaves = jax.tree.leaves((state.params, state.opt_state))
    tree = {"leaves": {f"{i:04d}": local(leaf) for i, leaf in enumerate(leaves)},
            "step": np.asarray(int(local(state.step)), np.int64), "losses": np.asarray(losses)}
    if state.key is not None:
        tree["key"] = local(jax.random.key_data(state.key))
    return tree


def abstract(tree: dict) -> dict:
    """Shapes and dtypes of ``tree``: what orbax restores into."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)


def state_from_tree(template, tree: dict):
    """The ``TrainState`` (of ``template``'s structure) and the losses read back from a checkpoint's ``tree``."""
    treedef = jax.tree.structure((template.params, template.opt_state))
    params, opt_state = jax.tree.unflatten(treedef, [tree["leaves"][k] for k in sorted(tree["leaves"])])
    key = None if template.key is None else jax.random.wrap_key_data(tree["key"])
    step = int(tree["step"]) if template.key is None else jax.numpy.asarray(int(tree["step"]), np.int32)
    return template._replace(params=params, opt_state=opt_state, key=key, step=step), np.asarray(tree["losses"])


def manager(path: Path, keep: int, *, read_only: bool, on_written: Callable[[], None] | None = None):
    """orbax's ``CheckpointManager`` for ``path``: a writer (saves in the background, ``on_written`` called in
    orbax's thread once a save's files are final) or a reader."""
    ocp = import_orbax()
    # several processes: process 0 alone writes and reads (the values are replicated), so orbax must not
    # wait for the others at its barriers
    alone = ocp.options.MultiprocessingOptions(primary_host=0, active_processes={0}) if jax.process_count() > 1 else None
    return ocp.CheckpointManager(
        path,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=not read_only, cleanup_tmp_directories=False,
            read_only=read_only, create=False,
            async_options=None if read_only else ocp.AsyncOptions(post_finalization_callback=on_written),
            **({"multiprocessing_options": alone} if alone else {}),
        ),
    )


def save(writer, step: int, tree: dict, meta: dict) -> bool:
    """Start writing ``tree`` and ``meta`` as step ``step``; False when orbax refuses the step."""
    ocp = import_orbax()
    return writer.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)))


def read_meta(reader, step: int) -> dict:
    """Step ``step``'s ``meta`` item."""
    ocp = import_orbax()
    return reader.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta


def read_tree(reader, step: int, like: dict) -> dict:
    """Step ``step``'s ``state`` item, read into the shapes and dtypes of ``like`` (``abstract``)."""
    ocp = import_orbax()
    return reader.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(like))).state
