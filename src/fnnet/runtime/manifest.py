"""A checkpoint's manifest: the SHA-256 of every file of a step, so damage is seen before the step is used.

``fnnet-manifest.json`` is written inside the step while orbax still holds it
under its temporary name, and checked before a resume reads the step. It
guards against damage (a truncated copy, a flipped bit, a deleted or added
file); it is not an authentication: whoever can write the folder can rewrite
it too.

Examples:
  >>> import tempfile
  >>> from pathlib import Path
  >>> step = Path(tempfile.mkdtemp())
  >>> (step / "d").write_bytes(b"weights")
  7
  >>> write_manifest(step)
  >>> check_manifest(step)  # whole: nothing raised
  >>> (step / "d").write_bytes(b"weightz")
  7
  >>> check_manifest(step)
  Traceback (most recent call last):
  ...
  ValueError: 1 file(s) changed or truncated, e.g. d
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MANIFEST = "fnnet-manifest.json"
_AFTER_MANIFEST = {MANIFEST, "commit_success.txt", "_CHECKPOINT_METADATA"}  # orbax rewrites these two after


def _file_digests(step_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(step_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(step_dir.rglob("*")) if p.is_file() and str(p.relative_to(step_dir)) not in _AFTER_MANIFEST
    }


def write_manifest(step_dir: Path) -> None:
    """Record the SHA-256 of every file of a checkpoint (written under a temporary name, then renamed)."""
    tmp = step_dir / f".{MANIFEST}.tmp"
    try:
        tmp.write_text(json.dumps(_file_digests(step_dir)))
        os.replace(tmp, step_dir / MANIFEST)
    finally:
        tmp.unlink(missing_ok=True)


def write_step_manifest(folder: Path, step: int) -> None:
    """The manifest of the save of ``step`` in ``folder``: in orbax's temporary folder while it has one, else in
    the step's own (orbax calls this from its thread once the files are final, with no arguments of its own)."""
    tmp = [p for p in folder.glob(f"{step}.orbax-checkpoint-tmp*") if p.is_dir()]
    for step_dir in tmp[:1] or [folder / str(step)]:
        write_manifest(step_dir)


def check_manifest(step_dir: Path) -> None:
    """Raise ValueError if the manifest is gone, or a file is missing, extra or changed since it was written."""
    manifest = step_dir / MANIFEST
    if not manifest.is_file():
        raise ValueError(f"its manifest {MANIFEST} is missing")
    want, got = json.loads(manifest.read_text()), _file_digests(step_dir)
    missing = sorted(set(want) - set(got))
    if missing:
        raise ValueError(f"{len(missing)} file(s) missing, e.g. {missing[0]}")
    extra = sorted(set(got) - set(want))
    if extra:
        raise ValueError(f"{len(extra)} file(s) fnnet did not write, e.g. {extra[0]}")
    changed = sorted(name for name in want if want[name] != got[name])
    if changed:
        raise ValueError(f"{len(changed)} file(s) changed or truncated, e.g. {changed[0]}")
