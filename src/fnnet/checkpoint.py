"""Checkpoints of a training run, so a run that dies loses at most the steps since the last one.

A checkpoint (orbax ``CheckpointManager``: each save is written under a
temporary name and renamed when complete, in the background, keeping the
newest few) holds everything the run carries (parameters, optimizer state, the
run's key as key data, the step) plus the losses so far and the run's
configuration. ``Checkpoints.restore`` takes the newest checkpoint that reads
back whole and matches its SHA-256, skipping (with a warning) any that is
truncated or partly deleted, and refuses one made with another configuration.
Because every step's randomness is ``fold_in(key, step)`` and chunking does not
change the arithmetic, a resumed run ends bit for bit where an uninterrupted
one does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import warnings
from pathlib import Path

import jax
import numpy as np

from fnnet.errors import ConfigError

KEEP = 3  # checkpoints kept; older ones are deleted


class CheckpointWarning(UserWarning):
    """A checkpoint could not be used and an older one was taken instead."""


def _fault(point: str, step: int) -> None:
    """Fault injection for the tests: ``FNNET_FAULT=point:step`` SIGKILLs this process there.

    Points: ``before-save`` (the chunk ending at ``step`` ran, nothing saved),
    ``during-save`` (orbax is writing in the background), ``after-save`` (that
    checkpoint is complete).
    """
    if os.environ.get("FNNET_FAULT") == f"{point}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def _ocp():
    logging.getLogger("absl").setLevel(logging.ERROR)  # orbax reports every save at INFO/WARNING
    import orbax.checkpoint as ocp

    return ocp


def _digest(leaves, losses) -> str:
    h = hashlib.sha256()
    for leaf in [*leaves, losses]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _tree(state, losses) -> dict:
    """What is written: parameters and optimizer state as a flat dict of leaves, key data, step, losses."""
    leaves = jax.tree.leaves((state.params, state.opt_state))
    tree = {"leaves": {f"{i:04d}": leaf for i, leaf in enumerate(leaves)},
            "step": np.asarray(int(state.step), np.int64), "losses": np.asarray(losses)}
    if state.key is not None:
        tree["key"] = jax.random.key_data(state.key)
    return tree


def _abstract(tree: dict) -> dict:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)


MANIFEST = "fnnet-manifest.json"


def _file_digests(step_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(step_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(step_dir.rglob("*")) if p.is_file() and p.name != MANIFEST
    }


def _write_manifest(step_dir: Path) -> None:
    """Record the SHA-256 of every file of a finished checkpoint (written under a temporary name, then renamed)."""
    if not step_dir.is_dir():
        return
    tmp = step_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(_file_digests(step_dir)))
    os.replace(tmp, step_dir / MANIFEST)


def _check_manifest(step_dir: Path) -> None:
    """Raise ValueError if a file of the checkpoint is missing, extra or changed since it was finished."""
    manifest = step_dir / MANIFEST
    if not manifest.is_file():
        return  # killed after orbax finished it and before the manifest: orbax and the checksum still judge it
    want, got = json.loads(manifest.read_text()), _file_digests(step_dir)
    missing = sorted(set(want) - set(got))
    if missing:
        raise ValueError(f"{len(missing)} file(s) missing, e.g. {missing[0]}")
    changed = sorted(name for name in want if want[name] != got[name])
    if changed:
        raise ValueError(f"{len(changed)} file(s) changed or truncated, e.g. {changed[0]}")


def describe_difference(saved: dict, now: dict) -> str | None:
    """One line naming what differs between two run configurations, or None.

    Examples:
      >>> describe_difference({"lesson": "nn", "lr": 1e-4}, {"lesson": "nn", "lr": 2e-4})
      'lr: checkpoint 0.0001, now 0.0002'
    """
    keys = [k for k in dict.fromkeys([*saved, *now]) if saved.get(k) != now.get(k)]
    if not keys:
        return None
    return "; ".join(f"{k}: checkpoint {saved.get(k)}, now {now.get(k)}" for k in keys)


class Checkpoints:
    """The checkpoints of one run in ``directory``.

    Examples:
      >>> import tempfile, fnnet
      >>> folder = tempfile.mkdtemp()
      >>> r = fnnet.fit("nn", steps=40, sizes=(4, 6, 5, 2), checkpoint_dir=folder, checkpoint_every=20)
      >>> Checkpoints(folder).steps()
      [20, 40]
    """

    def __init__(self, directory: str | os.PathLike, keep: int = KEEP):
        path = Path(directory).expanduser()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"checkpoint folder {str(path)!r} is a file; expected a folder")
        if not path.parent.is_dir():
            raise ConfigError(f"checkpoint folder {str(path)!r}: its parent folder does not exist")
        self.path = path.resolve()
        self._pending = None  # step of a save that may still be in flight
        ocp = _ocp()
        try:
            self.manager = ocp.CheckpointManager(
                self.path,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=keep, enable_async_checkpointing=True, cleanup_tmp_directories=True
                ),
            )
        except OSError as err:
            raise ConfigError(f"cannot use checkpoint folder {str(path)!r}: {err.strerror or err}") from None

    def steps(self) -> list[int]:
        """The steps that have a finished checkpoint, oldest first."""
        return sorted(self.manager.all_steps())

    def save(self, state, losses: np.ndarray, config: dict) -> None:
        """Start saving ``state`` (at ``state.step``) with the losses so far; returns before the write ends."""
        step = int(state.step)
        tree = _tree(state, losses)
        meta = {"step": step, "config": config, "sha256": _digest(jax.tree.leaves(tree), np.zeros(0))}
        ocp = _ocp()
        _fault("before-save", step)
        self._finish_pending()
        self._pending = step
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)),
        )
        _fault("during-save", step)  # the write is in flight in orbax's background thread
        if os.environ.get("FNNET_FAULT") == f"after-save:{step}":
            self.manager.wait_until_finished()
            _fault("after-save", step)

    def restore(self, template, config: dict):
        """``(state, losses)`` from the newest good checkpoint; ``template`` (a TrainState) gives the structure.

        Raises:
          ConfigError: when no checkpoint reads back whole, or the newest good
            one was made with a different configuration.
        """
        ocp = _ocp()
        steps = self.steps()
        if not steps:
            raise ConfigError(f"no checkpoint to resume from in {str(self.path)!r}")
        loss_dtype = np.float64 if template.key is None else np.float32
        for step in reversed(steps):
            try:
                _check_manifest(self.path / str(step))
                meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
                saved_config = meta["config"]
            except Exception as err:  # a damaged checkpoint fails in many ways; any of them means: skip it
                self._skip(step, err)
                continue
            difference = describe_difference(saved_config, config)
            if difference:
                raise ConfigError(f"the checkpoints in {str(self.path)!r} belong to another run ({difference}); "
                                  "nothing was changed")
            try:
                abstract = _abstract(_tree(template._replace(step=step), np.zeros(step, loss_dtype)))
                tree = self.manager.restore(
                    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
                ).state
                if _digest(jax.tree.leaves(tree), np.zeros(0)) != meta["sha256"]:
                    raise ValueError("its contents do not match the checksum saved with it")
            except Exception as err:
                self._skip(step, err)
                continue
            treedef = jax.tree.structure((template.params, template.opt_state))
            params, opt_state = jax.tree.unflatten(treedef, [tree["leaves"][k] for k in sorted(tree["leaves"])])
            key = None if template.key is None else jax.random.wrap_key_data(tree["key"])
            step_value = int(tree["step"]) if template.key is None else jax.numpy.asarray(int(tree["step"]), np.int32)
            return template._replace(params=params, opt_state=opt_state, key=key, step=step_value), np.asarray(tree["losses"])
        raise ConfigError(f"no readable checkpoint in {str(self.path)!r}: every one is damaged")

    def _skip(self, step: int, err: Exception) -> None:
        text = str(err).strip()
        reason = text.splitlines()[0][:160] if text else type(err).__name__
        warnings.warn(f"checkpoint at step {step} in {str(self.path)!r} is damaged ({reason}); "
                      "trying the one before it", CheckpointWarning, stacklevel=3)

    def _finish_pending(self) -> None:
        """Wait for the save in flight (orbax would before starting another) and write its manifest."""
        if self._pending is not None:
            self.manager.wait_until_finished()
            _write_manifest(self.path / str(self._pending))
            self._pending = None

    def close(self) -> None:
        """Wait for saves in flight to finish, then release the folder."""
        self._finish_pending()
        self.manager.close()
