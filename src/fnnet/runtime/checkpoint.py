"""Checkpoints of a training run, so a run that dies loses at most the steps since the last one.

A checkpoint (orbax ``CheckpointManager``: each save is written under a
temporary name and renamed when complete, in the background, keeping the
newest few) holds everything the run carries (parameters, optimizer state, the
run's key as key data, the step) plus the losses so far and the run's
configuration. ``Checkpoints.restore`` takes the newest checkpoint that reads
back whole and matches its SHA-256, moves the damaged newer ones aside (to
``damaged-STEP/``, with a warning) and refuses one made with another
configuration. Because every step's randomness is ``fold_in(key, step)`` and
chunking does not change the arithmetic, a resumed run ends bit for bit where
an uninterrupted one does.

The folder belongs to one run: ``Checkpoints.open`` takes an exclusive lock
(``.fnnet-lock``, holding the writer's pid; the system drops it when the process
ends, however it ends) and refuses a folder that holds anything fnnet did not
write. The manifest (``fnnet-manifest.json``, the SHA-256 of every file of a
step, written inside the step before orbax renames it into place) guards
against damage (a truncated copy, a flipped bit, a deleted or added file); it
is not an authentication: whoever can write the folder can rewrite it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import warnings
from pathlib import Path

import jax
import numpy as np

from fnnet.errors import ConfigError, StorageError, write_refused

KEEP = 3  # checkpoints kept; older ones are deleted
LOCK = ".fnnet-lock"  # the writer's lock file, inside the folder
MANIFEST = "fnnet-manifest.json"
DAMAGED = "damaged-"  # prefix of a damaged step moved aside
_STEP = re.compile(r"[0-9]+")
_TMP = re.compile(r"[0-9]+\.orbax-checkpoint-tmp.*")  # orbax's name for a step being written
_ORBAX_MARK = "_CHECKPOINT_METADATA"  # orbax writes it into every step folder first


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


def _is_late_tensorstore_callback(unraisable) -> bool:
    """The one harmless error orbax leaves behind when a save fails (a full disk).

    orbax runs a save's writes with ``loop.run_until_complete(gather(...))`` on
    a fresh event loop and closes the loop as soon as one write fails; the
    other writes' tensorstore futures still finish later, in tensorstore's own
    thread, and their callback ``loop.call_soon_threadsafe`` raises "Event loop
    is closed". Python can only print it (a traceback over our one-line error,
    about one failed save in ten). The save's real error reaches us through
    orbax anyway, so nothing is lost by dropping exactly this one.
    """
    exc, tb = unraisable.exc_value, unraisable.exc_traceback
    if unraisable.object is not None or type(exc) is not RuntimeError or str(exc) != "Event loop is closed":
        return False
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return frames == ["call_soon_threadsafe", "_check_closed"]


def _is_orbax_failed_write(record: logging.LogRecord) -> bool:
    """asyncio's "... exception was never retrieved" for one of orbax's writes that failed on storage.

    The same race as ``_is_late_tensorstore_callback``: the writes gathered
    with the first failed one fail too, after orbax stopped listening; asyncio
    logs each when it is garbage collected. Their error (a full disk) is the
    one the save already reported.
    """
    exc = record.exc_info[1] if record.exc_info else None
    text = str(record.msg)  # "Task (or Future, _GatheringFuture) exception was never retrieved\nfuture: <...>"
    return (" exception was never retrieved" in text.split("\n", 1)[0] and "orbax" in text
            and exc is not None and _storage_reason(exc) is not None)


def _install_unraisable_filter() -> None:
    """Keep orbax's leftovers of a failed save off stderr (once); everything else passes on.

    ``_is_late_tensorstore_callback`` goes in front of ``sys.unraisablehook``
    and ``_is_orbax_failed_write`` filters asyncio's logger.
    """
    current = sys.unraisablehook
    if not getattr(current, "_fnnet_filter", False):

        def hook(unraisable):
            if not _is_late_tensorstore_callback(unraisable):
                current(unraisable)

        hook._fnnet_filter = True
        sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(_keep_log_record)  # a no-op when it is there already


def _keep_log_record(record: logging.LogRecord) -> bool:
    return not _is_orbax_failed_write(record)


def _ocp():
    logging.getLogger("absl").setLevel(logging.CRITICAL)  # orbax logs every save, and every failure we report
    _install_unraisable_filter()  # the late callback can come after the run ends, so it stays
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
    from fnnet.runtime.placement import host_value

    def local(leaf):  # several processes: a leaf is replicated over all of them; process 0 writes its own copy
        return leaf if getattr(leaf, "is_fully_addressable", True) else host_value(leaf)

    leaves = jax.tree.leaves((state.params, state.opt_state))
    tree = {"leaves": {f"{i:04d}": local(leaf) for i, leaf in enumerate(leaves)},
            "step": np.asarray(int(local(state.step)), np.int64), "losses": np.asarray(losses)}
    if state.key is not None:
        tree["key"] = local(jax.random.key_data(state.key))
    return tree


def _abstract(tree: dict) -> dict:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)


_AFTER_MANIFEST = {MANIFEST, "commit_success.txt", "_CHECKPOINT_METADATA"}  # orbax rewrites these two after


def _file_digests(step_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(step_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(step_dir.rglob("*")) if p.is_file() and str(p.relative_to(step_dir)) not in _AFTER_MANIFEST
    }


def _write_manifest(step_dir: Path) -> None:
    """Record the SHA-256 of every file of a checkpoint (written under a temporary name, then renamed)."""
    tmp = step_dir / f".{MANIFEST}.tmp"
    try:
        tmp.write_text(json.dumps(_file_digests(step_dir)))
        os.replace(tmp, step_dir / MANIFEST)
    finally:
        tmp.unlink(missing_ok=True)


def _check_manifest(step_dir: Path) -> None:
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


def survey(path: Path) -> dict[str, list]:
    """Sort a checkpoint folder's entries: ``steps`` (ints, sorted), ``tmp``, ``damaged``, ``foreign`` (names).

    A step is a real folder named by an integer that orbax started writing
    (it holds orbax's metadata file); a folder ``N.orbax-checkpoint-tmp...`` is
    a save that never finished; ``damaged-N`` is a step moved aside. Anything
    else, including a symbolic link or an empty ``99999/``, is foreign.
    """
    found: dict[str, list] = {"steps": [], "tmp": [], "damaged": [], "foreign": []}
    for entry in sorted(path.iterdir()) if path.is_dir() else []:
        name, real_dir = entry.name, entry.is_dir() and not entry.is_symlink()
        if name == LOCK and entry.is_file():
            continue
        if real_dir and _STEP.fullmatch(name) and (entry / _ORBAX_MARK).is_file():
            found["steps"].append(int(name))
        elif real_dir and _TMP.fullmatch(name):
            found["tmp"].append(name)
        elif real_dir and name.startswith(DAMAGED):
            found["damaged"].append(name)
        else:
            found["foreign"].append(name + ("/" if real_dir else " (a link)" if entry.is_symlink() else ""))
    found["steps"].sort()
    return found


_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")  # how tensorstore reports the errno in its messages


def _storage_reason(err: BaseException) -> str | None:
    """The strerror of the system error behind ``err`` (an OSError, or tensorstore's text), or None."""
    seen = 0
    while err is not None and seen < 20:
        if isinstance(err, OSError) and err.errno is not None:
            return os.strerror(err.errno)
        code = _OS_ERROR_CODE.search(str(err))
        if code:
            return os.strerror(int(code.group(1)))
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def check_folder(directory, resume: bool, *, locked: bool = False) -> Path:
    """Check a checkpoint folder argument without touching the disk; return it as a Path.

    Used before any training starts (also for every lesson of ``fnnet train
    all``), so a bad folder is refused at once, not after hours of work.
    """
    if not str(directory).strip():
        raise ConfigError("checkpoint folder is an empty name; give a folder, e.g. --checkpoint-dir runs/nn")
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"checkpoint folder {str(path)!r} is a file; expected a folder")
    if not path.exists() and not path.parent.is_dir():
        raise ConfigError(f"checkpoint folder {str(path)!r}: its parent folder does not exist")
    holder = None if locked else _holder(path)  # ``locked``: this process holds the lock
    if holder:
        raise ConfigError(f"checkpoint folder {str(path)!r} is in use by another fnnet run (pid {holder}); "
                          "wait for it to end or choose another folder")
    found = survey(path)
    if found["foreign"]:
        more = f" (and {len(found['foreign']) - 1} more)" if len(found["foreign"]) > 1 else ""
        raise ConfigError(f"checkpoint folder {str(path)!r} holds {found['foreign'][0]}{more}, which fnnet did not "
                          "write; give fnnet a new or empty folder of its own")
    if resume and not found["steps"]:
        why = ("does not exist" if not path.exists() else
               "holds only a save that never finished; start again without --resume" if found["tmp"] else
               "holds no checkpoint")
        raise ConfigError(f"nothing to resume: checkpoint folder {str(path)!r} {why}")
    if not resume and found["steps"]:
        raise ConfigError(f"checkpoint folder {str(path)!r} already holds a run (steps up to {found['steps'][-1]}); "
                          "resume it with --resume, or choose an empty folder")
    return path


def run_folders(directory, lessons: list[str]) -> dict[str, Path]:
    """Where each lesson of a run keeps its checkpoints: ``directory`` for one lesson, ``directory/LESSON``
    for several (nothing is checked or touched).

    Examples:
      >>> {k: str(v) for k, v in run_folders("runs", ["nn", "optim"]).items()}
      {'nn': 'runs/nn', 'optim': 'runs/optim'}
    """
    base = Path(directory).expanduser()
    return {lessons[0]: base} if len(lessons) == 1 else {lesson: base / lesson for lesson in lessons}


def check_run_folders(directory, lessons: list[str], resume: bool) -> tuple[dict[str, Path], dict[str, bool]]:
    """The checkpoint folder of each lesson, all checked before any trains, and whether each one resumes.

    One lesson uses ``directory`` itself; several use ``directory/LESSON`` (and
    ``directory`` is made if missing). With ``resume``, a lesson whose folder
    holds no checkpoint yet (the run had not reached it) starts from step 0.
    """
    if len(lessons) == 1:
        return {lessons[0]: check_folder(directory, resume)}, {lessons[0]: resume}
    folders = run_folders(directory, lessons)
    if not str(directory).strip():
        raise ConfigError("checkpoint folder is an empty name; give a folder, e.g. --checkpoint-dir runs")
    base = Path(directory).expanduser()
    if base.exists() and not base.is_dir():
        raise ConfigError(f"checkpoint folder {str(base)!r} is a file; expected a folder")
    if not base.exists() and not base.parent.is_dir():
        raise ConfigError(f"checkpoint folder {str(base)!r}: its parent folder does not exist")
    resumes = {lesson: resume and bool(survey(folders[lesson])["steps"]) for lesson in lessons}
    if resume and not any(resumes.values()):
        raise ConfigError(f"nothing to resume: no lesson's folder in {str(base)!r} holds a checkpoint")
    for lesson in lessons if base.is_dir() else []:  # a new folder: nothing in it to check yet
        check_folder(folders[lesson], resumes[lesson])
    try:
        base.mkdir(exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot write to checkpoint folder {str(base)!r} ({err.strerror or err})") from None
    return folders, resumes


def _holder(folder: Path) -> str | None:
    """The pid written in the folder's lock while another process holds it, else None (nothing is changed)."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)


class _Lock:
    """An exclusive ``flock`` on ``folder/.fnnet-lock`` holding this process's pid; released by ``release``
    or by the system when the process ends."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise ConfigError(f"checkpoint folder {str(folder)!r} is in use by another fnnet run (pid {holder}); "
                              "wait for it to end or choose another folder") from None
        try:  # writing the pid also proves the folder takes writes before any training starts
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
            os.fsync(self.fd)
        except OSError:
            self.release()
            raise

    def release(self, remove: bool = False) -> None:
        if self.fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


class Checkpoints:
    """The checkpoints of one run in ``directory``: ``Checkpoints(folder)`` reads, ``Checkpoints.open`` writes.

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
        self.path = path.resolve()
        self.keep = keep
        self.manager = None  # orbax's, made when first needed
        self.stop = None  # a signals.StopRequest while a run writes here
        self._lock = None
        self._created = False
        self._pending = None  # step of a save that may still be in flight
        self._save_failed = False  # a save failed and was reported: orbax's own close may fail on the same storage

    @classmethod
    def open(cls, directory, *, resume: bool, keep: int = KEEP) -> "Checkpoints":
        """Take ``directory`` for a run: check it, lock it (made if missing), clear unfinished saves, and
        watch for Ctrl-C and SIGTERM (``watch_signals``) until ``close``.

        Raises:
          ConfigError: the folder is a file, has no parent, holds files fnnet
            did not write, is in use by another run, cannot be written, holds a
            run (without ``resume``) or nothing to resume (with it).
        """
        path = check_folder(directory, resume)
        self = cls(path, keep)
        try:
            created = not path.exists()
            path.mkdir(exist_ok=True)
            self._created = created
            self._lock = _Lock(self.path)
        except OSError as err:
            if self._created:
                shutil.rmtree(self.path, ignore_errors=True)
            raise write_refused(err, f"cannot write to checkpoint folder {str(path)!r} "
                                     f"({err.strerror or err}); nothing was trained") from None
        try:
            self.watch_signals()  # from here on a Ctrl-C or SIGTERM ends the run with a checkpoint, not a loss
            check_folder(path, resume, locked=True)  # again, now that no other run can change it
            for name in survey(self.path)["tmp"]:  # saves that never finished; ours to clear now that we hold the lock
                shutil.rmtree(self.path / name)
            self.manager = self._manager(read_only=False)
        except BaseException as err:
            self._release()
            if isinstance(err, OSError):
                raise write_refused(err, f"cannot write to checkpoint folder {str(path)!r} "
                                         f"({err.strerror or err}); nothing was trained") from None
            raise
        return self

    def _manager(self, read_only: bool):
        ocp = _ocp()
        pending = self  # orbax calls back with no arguments; the step is ours to know

        def write_manifest():  # runs in orbax's thread after the files are final, before the rename
            tmp = [p for p in self.path.glob(f"{pending._pending}.orbax-checkpoint-tmp*") if p.is_dir()]
            for step_dir in tmp[:1] or [self.path / str(pending._pending)]:
                _write_manifest(step_dir)

        # several processes: process 0 alone writes and reads (the values are replicated), so orbax must not
        # wait for the others at its barriers
        alone = ocp.options.MultiprocessingOptions(primary_host=0, active_processes={0}) if jax.process_count() > 1 else None
        return ocp.CheckpointManager(
            self.path,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=self.keep, enable_async_checkpointing=not read_only, cleanup_tmp_directories=False,
                read_only=read_only, create=False,
                async_options=None if read_only else ocp.AsyncOptions(post_finalization_callback=write_manifest),
                **({"multiprocessing_options": alone} if alone else {}),
            ),
        )

    def steps(self) -> list[int]:
        """The steps that have a checkpoint (finished or not: ``restore`` judges them), oldest first."""
        return survey(self.path)["steps"]

    def watch_signals(self):
        """Record Ctrl-C and SIGTERM until ``close`` (see ``fnnet.signals``); the host loop reads ``stop.requested``.

        ``open`` calls it, so a signal that comes while the run restores or
        compiles is kept too: the run then stops after its first chunk.
        """
        if self.stop is None:
            from fnnet.runtime.signals import StopRequest

            self.stop = StopRequest(str(self.path)).install()
        return self.stop

    def save(self, state, losses: np.ndarray, config: dict) -> None:
        """Start saving ``state`` (at ``state.step``) with the losses so far; returns before the write ends.

        Raises:
          StorageError: this save or the one before it could not be written
            (a full disk, a read-only folder); the unfinished one is removed.
        """
        step = int(state.step)
        tree = _tree(state, losses)
        meta = {"step": step, "config": config, "sha256": _digest(jax.tree.leaves(tree), np.zeros(0))}
        ocp = _ocp()
        _fault("before-save", step)
        self._finish_pending()
        self._pending = step
        try:
            saved = self.manager.save(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)),
            )
        except Exception as err:
            self._failed(step, err)
        if not saved:  # orbax refuses a step at or before its newest: never let that pass silently
            self._pending = None
            raise StorageError(f"orbax refused to save step {step} in {str(self.path)!r} "
                               f"(its newest step is {self.manager.latest_step()})")
        _fault("during-save", step)  # the write is in flight in orbax's background thread
        if os.environ.get("FNNET_FAULT") == f"after-save:{step}":
            self.manager.wait_until_finished()
            _fault("after-save", step)

    def _failed(self, step: int, err: BaseException):
        """Remove what a failed save left and raise StorageError (or re-raise what is not about storage)."""
        self._pending = None
        self._save_failed = True
        for name in [n for n in survey(self.path)["tmp"] if n.split(".")[0] == str(step)]:
            shutil.rmtree(self.path / name, ignore_errors=True)
        step_dir = self.path / str(step)
        if step_dir.is_dir() and not (step_dir / MANIFEST).is_file():
            shutil.rmtree(step_dir, ignore_errors=True)
        reason = _storage_reason(err)
        if reason is None:
            raise err
        with_steps = [s for s in self.steps() if s != step]
        last = f"the last good checkpoint is step {with_steps[-1]}" if with_steps else "no checkpoint was kept"
        raise StorageError(f"could not write the checkpoint at step {step} in {str(self.path)!r} ({reason}); "
                           f"{last}") from None

    def restore(self, template, config: dict):
        """Read the newest good checkpoint (see ``_restore``); a reader's own orbax manager is closed after."""
        if self.manager is not None:
            return self._restore(self.manager, template, config)
        manager = self._manager(read_only=True)
        try:
            return self._restore(manager, template, config)
        finally:
            manager.close()

    def _restore(self, manager, template, config: dict):
        """``(state, losses)`` from the newest good checkpoint; ``template`` (a TrainState) gives the structure.

        Damaged checkpoints newer than the one taken (and any whose files do not
        match their manifest) are moved aside to ``damaged-STEP/`` with a
        warning, so the run's next save is never refused.

        Raises:
          ConfigError: when no checkpoint reads back whole, or the newest good
            one was made with a different configuration.
        """
        ocp = _ocp()
        steps = self.steps()
        if not steps:
            raise ConfigError(f"no checkpoint to resume from in {str(self.path)!r}")
        loss_dtype = np.float64 if template.key is None else np.float32
        damaged: dict[int, str] = {}
        for step in steps:  # the manifests of all, cheaply: a damaged old one must not rotate out a good one
            try:
                _check_manifest(self.path / str(step))
            except Exception as err:
                damaged[step] = _reason(err)
        found = None
        for step in reversed(steps):
            if step in damaged:
                continue
            try:
                meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
                saved_config = meta["config"]
            except Exception as err:  # a damaged checkpoint fails in many ways; any of them means: skip it
                damaged[step] = _reason(err)
                continue
            difference = describe_difference(saved_config, config)
            if difference:
                raise ConfigError(f"the checkpoints in {str(self.path)!r} belong to another run ({difference}); "
                                  "nothing was changed")
            try:
                abstract = _abstract(_tree(template._replace(step=step), np.zeros(step, loss_dtype)))
                tree = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))).state
                if _digest(jax.tree.leaves(tree), np.zeros(0)) != meta["sha256"]:
                    raise ValueError("its contents do not match the checksum saved with it")
            except Exception as err:
                damaged[step] = _reason(err)
                continue
            found = step
            break
        if found is None:
            raise ConfigError(f"no readable checkpoint in {str(self.path)!r}: every one is damaged "
                              f"(step {max(damaged)}: {damaged[max(damaged)]})")
        for step in sorted(damaged, reverse=True):
            where = self._move_aside(step) if self.manager is not None else None
            action = f"moved to {where}/, " if where else ""
            warnings.warn(f"checkpoint at step {step} in {str(self.path)!r} is damaged ({damaged[step]}); "
                          f"{action}resuming from step {found}", CheckpointWarning, stacklevel=2)
        if damaged and self.manager is not None:
            self.manager.reload()
        treedef = jax.tree.structure((template.params, template.opt_state))
        params, opt_state = jax.tree.unflatten(treedef, [tree["leaves"][k] for k in sorted(tree["leaves"])])
        key = None if template.key is None else jax.random.wrap_key_data(tree["key"])
        step_value = int(tree["step"]) if template.key is None else jax.numpy.asarray(int(tree["step"]), np.int32)
        return template._replace(params=params, opt_state=opt_state, key=key, step=step_value), np.asarray(tree["losses"])

    def _move_aside(self, step: int) -> str:
        name, n = f"{DAMAGED}{step}", 1
        while (self.path / name).exists():
            n += 1
            name = f"{DAMAGED}{step}-{n}"
        os.rename(self.path / str(step), self.path / name)
        return name

    def _finish_pending(self) -> None:
        """Wait for the save in flight (orbax would before starting another); StorageError if it failed."""
        if self._pending is not None:
            step = self._pending
            try:
                self.manager.wait_until_finished()
            except Exception as err:
                self._failed(step, err)
            self._pending = None

    def close(self) -> None:
        """Wait for saves in flight to finish, then release the folder (and its lock); always shuts orbax down."""
        try:
            if self.manager is not None:
                self._finish_pending()
        finally:
            try:
                if self.manager is not None:
                    self.manager.close()
            except Exception as err:
                # orbax's close waits on its own writes too (its metadata file); after a failed save that we
                # reported they fail on the same full disk, and saying so again would bury the first line
                reason = _storage_reason(err)
                if reason is None:
                    raise
                if not self._save_failed:
                    raise StorageError(f"could not finish writing the checkpoints in {str(self.path)!r} ({reason})") from None
            finally:
                self._release()

    def _release(self) -> None:
        if self.stop is not None:
            self.stop.uninstall()
        if self._lock is not None:
            empty = not any(e.name != LOCK for e in self.path.iterdir()) if self.path.is_dir() else False
            self._lock.release(remove=empty and self._created)
            self._lock = None
            if empty and self._created:  # a run that saved nothing (it diverged at once) leaves no folder
                with contextlib.suppress(OSError):
                    self.path.rmdir()


def _reason(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


__all__ = ["Checkpoints", "CheckpointWarning", "check_folder", "check_run_folders", "run_folders", "survey", "describe_difference", "KEEP"]
