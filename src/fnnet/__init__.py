"""fnnet: the "Learning PyTorch with Examples" tutorial redone the JAX way.

Examples:
  >>> import fnnet
  >>> list(fnnet.LESSONS)[:3]
  ['numpy', 'tensors', 'autograd']
  >>> result = fnnet.fit("custom_function", steps=50, sizes=(16, 32, 8, 4))
  >>> bool(result.losses[-1] < result.losses[0])
  True
"""

from fnnet import functional
from fnnet.data import Sizes
from fnnet.errors import ConfigError, DivergenceError
from fnnet.lessons import LESSONS, Lesson
from fnnet.train import FitResult, Progress, TrainState, fit

__version__ = "0.1.0"

__all__ = [
    "LESSONS", "Lesson", "Sizes", "fit", "FitResult", "Progress", "TrainState",
    "ConfigError", "DivergenceError", "functional",
]
