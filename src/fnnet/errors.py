"""The errors fnnet raises on purpose.

``ConfigError`` marks a mistake in what the caller asked for (a bad number, an
unknown name, arrays of the wrong shape); the command turns it into one line on
stderr and exit status 2. ``DivergenceError`` marks a run whose loss stopped
being finite; the command exits 3. ``StorageError`` marks a write that failed
after training started (exit 4); ``Interrupted`` a run stopped by Ctrl-C or
SIGTERM after saving a checkpoint (exit 130 or 143).
"""

from __future__ import annotations

import numpy as np


class ConfigError(ValueError):
    """An argument the caller gave is not one fnnet can use.

    The message names what was expected and what came, in one line.
    """


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss.

    Attributes:
      step: index of the first step whose loss is not finite (0-based).
      loss: that loss (``nan`` or ``inf``).
      lr: the learning rate of the run.
      losses: the losses of every step up to and including ``step``.
    """

    def __init__(self, step: int, loss: float, lr: float, losses: np.ndarray):
        self.step = int(step)
        self.loss = float(loss)
        self.lr = float(lr)
        self.losses = losses
        rate = f"learning rate {self.lr:g}" if np.isfinite(self.lr) else "the optimizer's learning rate"
        super().__init__(
            f"training diverged at step {self.step}: loss is {self.loss} with {rate}; try a smaller --lr"
        )


class StorageError(OSError):
    """A write that training had started on failed: a full disk, a folder that became read-only.

    The command prints one line and exits 4. Whatever was finished before the
    failure (the last good checkpoint, a metrics file written earlier) is kept,
    and no half-written file or temporary folder is left behind.
    """


SIGNAL_NAMES = {2: "Ctrl-C (SIGINT)", 15: "SIGTERM"}


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM after saving a checkpoint at the step it had reached.

    Attributes:
      step: the step the run stopped at; the checkpoint saved there is the newest.
      folder: the checkpoint folder.
      signum: the signal (2 for SIGINT, 15 for SIGTERM); the command exits 128 + signum.
      process: with several processes, the one the signal was sent to (all stop at ``step``), else None.
    """

    def __init__(self, step: int, folder: str, signum: int, process: int | None = None):
        self.step, self.folder, self.signum = int(step), str(folder), int(signum)
        self.process = None if process is None else int(process)
        sent = "" if self.process is None else f" (sent to process {self.process})"
        super().__init__(f"stopped by {SIGNAL_NAMES.get(self.signum, f'signal {self.signum}')}{sent} at step "
                         f"{self.step}; checkpoint saved in {self.folder!r}")


STORAGE_ERRNOS = {28, 30, 122, 5}  # ENOSPC, EROFS, EDQUOT, EIO: the storage failed, not the user's choice of path


def write_refused(err: OSError, message: str) -> Exception:
    """The error for a write the system refused: StorageError (exit 4) when the storage is full, read-only or
    failing; ConfigError (exit 2) when the path is one the user may not write (permissions, not a folder)."""
    return (StorageError if err.errno in STORAGE_ERRNOS else ConfigError)(message)
