"""One writer per checkpoint folder: an exclusive ``flock`` on ``FOLDER/.fnnet-lock`` that holds the writer's pid.

The system drops the lock when the process ends, however it ends (a SIGKILL
included), so a folder is never left locked by a run that is gone; the pid in
the file only names the holder in the error a second writer gets.

Examples:
  >>> import os, tempfile
  >>> from pathlib import Path
  >>> folder = Path(tempfile.mkdtemp())
  >>> lock = FolderLock(folder)
  >>> holder(folder) == str(os.getpid())  # what a second writer is told
  True
  >>> lock.release(remove=True)
  >>> holder(folder) is None, sorted(folder.iterdir())
  (True, [])
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from fnnet.errors import ConfigError

LOCK = ".fnnet-lock"  # the writer's lock file, inside the folder


def in_use(folder: Path, pid: str) -> ConfigError:
    """The error a second writer gets."""
    return ConfigError(f"checkpoint folder {str(folder)!r} is in use by another fnnet run (pid {pid}); "
                       "wait for it to end or choose another folder")


def holder(folder: Path) -> str | None:
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


class FolderLock:
    """An exclusive ``flock`` on ``folder/.fnnet-lock`` holding this process's pid; released by ``release``
    or by the system when the process ends.

    Raises:
      ConfigError: another process holds it (``in_use``).
      OSError: the lock file cannot be made or written (the folder takes no writes).
    """

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise in_use(folder, pid) from None
        try:  # writing the pid also proves the folder takes writes before any training starts
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
            os.fsync(self.fd)
        except OSError:
            self.release()
            raise

    def release(self, remove: bool = False) -> None:
        """Let go of the folder (``remove``: delete the lock file first); a no-op the second time."""
        if self.fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None
