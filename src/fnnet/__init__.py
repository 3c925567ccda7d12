"""fnnet: the "Learning PyTorch with Examples" tutorial redone the JAX way.

The names below load on first use, so ``import fnnet`` (and the ``fnnet``
command's argument parsing) stays quick; ``fnnet.fit`` pulls in JAX.

Examples:
  >>> import fnnet
  >>> list(fnnet.LESSONS)[:3]
  ['numpy', 'tensors', 'autograd']
  >>> result = fnnet.fit("custom_function", steps=50, sizes=(16, 32, 8, 4))
  >>> bool(result.losses[-1] < result.losses[0])
  True
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "LESSONS": "fnnet.lessons",
    "Lesson": "fnnet.lessons",
    "Sizes": "fnnet.data",
    "fit": "fnnet.train",
    "FitResult": "fnnet.train",
    "Progress": "fnnet.loop",
    "StopTraining": "fnnet.loop",
    "TrainState": "fnnet.core",
    "Model": "fnnet.functional",
    "ConfigError": "fnnet.errors",
    "DivergenceError": "fnnet.errors",
}
_SUBMODULES = ("functional", "modules", "lessons", "optimizers", "train", "data", "report", "errors", "cli", "config",
               "core", "loop", "hooks", "placement", "checkpoint", "sweep", "compare", "bench", "distributed",
               "notebook", "torch_ref")

__all__ = sorted(_EXPORTS) + ["functional"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"fnnet.{name}")
    raise AttributeError(f"module 'fnnet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
