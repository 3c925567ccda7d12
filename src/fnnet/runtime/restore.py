"""Which checkpoint a resume takes: the newest that reads back whole, made by the same run.

A step is damaged when its files do not match its manifest, orbax cannot read
it, or its arrays do not match the SHA-256 saved with them; ``newest_good``
skips damaged steps (naming each one's reason) and refuses, without changing
anything, checkpoints made with another configuration.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from fnnet.errors import ConfigError
from fnnet.runtime import orbax_io
from fnnet.runtime.manifest import check_manifest
from fnnet.runtime.storage import first_line


class CheckpointWarning(UserWarning):
    """A checkpoint could not be used and an older one was taken instead, or a part of it could not be compared."""


FINGERPRINTED = ("fingerprint", "schedule")  # what a record holds since fnnet wrote what trained (issue 22)
_PARTS = {"optimizer": "the optimizer's hyperparameters or rate", "loss": "the loss function's code"}


def describe_difference(saved: dict, now: dict) -> str | None:
    """One line naming what differs between two run configurations, or None.

    Examples:
      >>> describe_difference({"lesson": "nn", "lr": 1e-4}, {"lesson": "nn", "lr": 2e-4})
      'lr: checkpoint 0.0001, now 0.0002'
      >>> describe_difference({"fingerprint": {"loss": "sha256:1"}}, {"fingerprint": {"loss": "sha256:2"}})
      "the loss function's code differs"
    """
    keys = [k for k in dict.fromkeys([*saved, *now]) if saved.get(k) != now.get(k)]
    if not keys:
        return None
    said = []
    for k in keys:
        if k == "fingerprint":
            parts = [p for p in dict.fromkeys([*saved[k], *now[k]]) if saved[k].get(p) != now[k].get(p)]
            said += [f"{_PARTS.get(p, p)} differs" for p in parts]
        else:
            said.append(f"{k}: checkpoint {saved.get(k)}, now {now.get(k)}")
    return "; ".join(said)


def comparable(saved: dict, now: dict) -> tuple[dict, dict, list[str]]:
    """``(saved, now, notes)``: the two records with what cannot be compared left out, and one note per part left out.

    A checkpoint written before fnnet recorded what trained has no fingerprints: both leave them out. A part
    either side could not read (``"unreadable: ..."``) is left out of both.

    Examples:
      >>> comparable({"lesson": "nn"}, {"lesson": "nn", "fingerprint": {"loss": "sse"}})[2]
      ["the checkpoint was written before fnnet recorded what trained (the optimizer's hyperparameters, the loss function's code); resuming without comparing them"]
    """
    if "fingerprint" not in saved:
        note = ("the checkpoint was written before fnnet recorded what trained (the optimizer's hyperparameters, "
                "the loss function's code); resuming without comparing them")
        now = {k: v for k, v in now.items() if k not in FINGERPRINTED}
        if saved.get("lr", 0) is None:  # it recorded no rate for a schedule or an optax optimizer
            now["lr"] = None
        return saved, now, [note]
    notes, saved, now = [], dict(saved), dict(now)
    saved["fingerprint"], now["fingerprint"] = dict(saved["fingerprint"]), dict(now["fingerprint"])
    for part in sorted(set(saved["fingerprint"]) | set(now["fingerprint"])):
        values = (str(saved["fingerprint"].get(part)), str(now["fingerprint"].get(part)))
        if any(v.startswith("unreadable") for v in values):
            notes.append(f"could not compare {_PARTS.get(part, part)} with the checkpoint's ({values[0]}; now "
                         f"{values[1]}); resuming without comparing it")
            saved["fingerprint"].pop(part, None)
            now["fingerprint"].pop(part, None)
    return saved, now, notes


def damaged_manifests(path: Path, steps: list[int]) -> dict[int, str]:
    """The steps whose files do not match their manifest, each with the reason (all of them, cheaply: a
    damaged old step must not rotate out a good one)."""
    damaged = {}
    for step in steps:
        try:
            check_manifest(path / str(step))
        except Exception as err:
            damaged[step] = first_line(err)
    return damaged


def _refuse_another_run(path: Path, saved: dict, config: dict) -> None:
    saved, config, notes = comparable(saved, config)
    for note in notes:
        warnings.warn(note, CheckpointWarning, stacklevel=3)
    difference = describe_difference(saved, config)
    if difference:
        raise ConfigError(f"the checkpoints in {str(path)!r} belong to another run ({difference}); nothing was changed")


def _read_checked(reader, step: int, template, meta: dict) -> dict:
    """Step ``step``'s arrays, in ``template``'s shapes; ValueError unless they match their saved SHA-256."""
    loss_dtype = np.float64 if template.key is None else np.float32
    like = orbax_io.abstract(orbax_io.written_tree(template._replace(step=step), np.zeros(step, loss_dtype)))
    tree = orbax_io.read_tree(reader, step, like)
    if orbax_io.digest(tree) != meta["sha256"]:
        raise ValueError("its contents do not match the checksum saved with it")
    return tree


def newest_good(reader, path: Path, steps: list[int], template, config: dict) -> tuple[int, dict, dict[int, str]]:
    """``(step, tree, damaged)``: the newest step that reads back whole, its arrays, and every damaged step
    (newer ones, and any whose manifest fails) with its reason.

    Raises:
      ConfigError: no step to resume from, every one damaged, or the newest readable one made with another
        configuration than ``config``.
    """
    if not steps:
        raise ConfigError(f"no checkpoint to resume from in {str(path)!r}")
    damaged = damaged_manifests(path, steps)
    for step in reversed(steps):
        if step in damaged:
            continue
        try:
            meta = orbax_io.read_meta(reader, step)
            saved_config = meta["config"]
        except Exception as err:  # a damaged checkpoint fails in many ways; any of them means: skip it
            damaged[step] = first_line(err)
            continue
        _refuse_another_run(path, saved_config, config)
        try:
            return step, _read_checked(reader, step, template, meta), damaged
        except Exception as err:
            damaged[step] = first_line(err)
    raise ConfigError(f"no readable checkpoint in {str(path)!r}: every one is damaged "
                      f"(step {max(damaged)}: {damaged[max(damaged)]})")
