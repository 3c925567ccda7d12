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

``Checkpoints`` ties together the pieces beside it, one responsibility each:
``checkpoint_folder`` (the folder's layout and the checks before a run),
``folder_lock`` (one writer), ``manifest`` (the files' SHA-256), ``orbax_io``
(what a checkpoint holds; orbax's reads and writes), ``restore`` (which
checkpoint a resume takes), ``orbax_quirks`` (orbax's noise kept off stderr)
and ``storage`` (a failed write's reason in one line).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from fnnet.errors import ConfigError, StorageError, write_refused
from fnnet.runtime import orbax_io
from fnnet.runtime.checkpoint_folder import (DAMAGED, check_folder, check_run_folders, clear_unfinished, make_folder,
                                             move_aside, release, remove_empty, run_folders, survey)
from fnnet.runtime.folder_lock import LOCK, FolderLock
from fnnet.runtime.manifest import MANIFEST, write_step_manifest
from fnnet.runtime.restore import CheckpointWarning, describe_difference, newest_good
from fnnet.runtime.storage import storage_reason

KEEP = 3  # checkpoints kept; older ones are deleted


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
        self._made = []  # the folders open made for this run (the folder and those above it), outermost first
        self._pending = None  # step of a save that may still be in flight
        self._save_failed = False  # a save failed and was reported: orbax's own close may fail on the same storage

    @classmethod
    def open(cls, directory, *, resume: bool, keep: int = KEEP) -> "Checkpoints":
        """Take ``directory`` for a run: check it, lock it (made if missing, with the folders above it, said in
        one line), clear unfinished saves, and watch for Ctrl-C and SIGTERM (``watch_signals``) until ``close``.

        Raises:
          ConfigError: the folder is a file, is under a file, holds files fnnet
            did not write, is in use by another run, cannot be written, holds a
            run (without ``resume``) or nothing to resume (with it).
        """
        path = check_folder(directory, resume)
        self = cls(path, keep)
        try:
            self._take(path)
            self.watch_signals()  # from here on a Ctrl-C or SIGTERM ends the run with a checkpoint, not a loss
            check_folder(path, resume, locked=True)  # again, now that no other run can change it
            clear_unfinished(self.path)  # saves that never finished; ours to clear now that we hold the lock
            self.manager = orbax_io.manager(self.path, self.keep, read_only=False, on_written=self._write_manifest)
        except BaseException as err:
            self._release()
            if isinstance(err, OSError):
                raise write_refused(err, f"cannot write to checkpoint folder {str(path)!r} "
                                         f"({err.strerror or err}); nothing was trained") from None
            raise
        return self

    def _take(self, given: Path) -> None:
        """Make the folder if missing (and the folders above it: one line names them, with the folder as
        ``given``) and lock it; the folders made here are removed again if it cannot be locked."""
        self._created = not self.path.exists()
        try:
            self._made = make_folder(self.path, f"the checkpoint folder {given}", shown=given)
            self._lock = FolderLock(self.path)
        except BaseException:
            if self._created:
                shutil.rmtree(self.path, ignore_errors=True)
                remove_empty(self._made)
                self._created, self._made = False, []
            raise

    def _write_manifest(self) -> None:  # orbax calls back with no arguments; the step is ours to know
        write_step_manifest(self.path, self._pending)

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
        tree = orbax_io.written_tree(state, losses)
        meta = {"step": step, "config": config, "sha256": orbax_io.digest(tree)}
        self._finish_pending()
        self._pending = step
        try:
            saved = orbax_io.save(self.manager, step, tree, meta)
        except Exception as err:
            self._failed(step, err)
        if not saved:  # orbax refuses a step at or before its newest: never let that pass silently
            self._pending = None
            raise StorageError(f"orbax refused to save step {step} in {str(self.path)!r} "
                               f"(its newest step is {self.manager.latest_step()})")

    def _failed(self, step: int, err: BaseException):
        """Remove what a failed save left and raise StorageError (or re-raise what is not about storage)."""
        self._pending = None
        self._save_failed = True
        clear_unfinished(self.path, step)
        step_dir = self.path / str(step)
        if step_dir.is_dir() and not (step_dir / MANIFEST).is_file():
            shutil.rmtree(step_dir, ignore_errors=True)
        reason = storage_reason(err)
        if reason is None:
            raise err
        with_steps = [s for s in self.steps() if s != step]
        last = f"the last good checkpoint is step {with_steps[-1]}" if with_steps else "no checkpoint was kept"
        raise StorageError(f"could not write the checkpoint at step {step} in {str(self.path)!r} ({reason}); "
                           f"{last}") from None

    def restore(self, template, config: dict):
        """Read the newest good checkpoint (see ``_restore``); a reader's own orbax manager is closed after."""
        reader = self.manager if self.manager is not None else orbax_io.manager(self.path, self.keep, read_only=True)
        try:
            return self._restore(reader, template, config)
        finally:
            if reader is not self.manager:
                reader.close()

    def _restore(self, reader, template, config: dict):
        """``(state, losses)`` from the newest good checkpoint; ``template`` (a TrainState) gives the structure.

        Damaged checkpoints newer than the one taken (and any whose files do not
        match their manifest) are moved aside to ``damaged-STEP/`` with a
        warning, so the run's next save is never refused.

        Raises:
          ConfigError: when no checkpoint reads back whole, or the newest good
            one was made with a different configuration.
        """
        found, tree, damaged = newest_good(reader, self.path, self.steps(), template, config)
        for step in sorted(damaged, reverse=True):
            where = move_aside(self.path, step) if self.manager is not None else None
            action = f"moved to {where}/, " if where else ""
            warnings.warn(f"checkpoint at step {step} in {str(self.path)!r} is damaged ({damaged[step]}); "
                          f"{action}resuming from step {found}", CheckpointWarning, stacklevel=2)
        if damaged and self.manager is not None:
            self.manager.reload()
        return orbax_io.state_from_tree(template, tree)

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
                reason = storage_reason(err)
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
            release(self.path, self._lock, self._created, self._made)
            self._lock = None


__all__ = ["Checkpoints", "CheckpointWarning", "check_folder", "check_run_folders", "run_folders", "survey",
           "describe_difference", "KEEP", "LOCK", "MANIFEST", "DAMAGED"]
