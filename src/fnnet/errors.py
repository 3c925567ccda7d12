"""The errors fnnet raises on purpose.

``ConfigError`` marks a mistake in what the caller asked for (a bad number, an
unknown name, arrays of the wrong shape); the command turns it into one line on
stderr and exit status 2. ``DivergenceError`` marks a run whose loss stopped
being finite; the command exits 3.
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
