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
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

_EXPORTS = {
    "LESSONS": "fnnet.lessons",
    "Lesson": "fnnet.lessons",
    "Sizes": "fnnet.data",
    "fit": "fnnet.training.fit",
    "FitResult": "fnnet.training.fit",
    "Progress": "fnnet.training.loop",
    "StopTraining": "fnnet.training.loop",
    "TrainState": "fnnet.training.core",
    "Model": "fnnet.model",
    "ConfigError": "fnnet.errors",
    "DivergenceError": "fnnet.errors",
}
_SUBMODULES = ("functional", "modules", "lessons", "optimizers", "train", "data", "report", "errors", "cli", "config",
               "core", "loop", "hooks", "placement", "checkpoint", "sweep", "compare", "bench", "distributed",
               "notebook", "torch_ref")

__all__ = sorted(_EXPORTS) + ["functional"]


# Where each module of the old flat layout lives now. ``import fnnet.train`` (or ``fnnet.notebook``, which every
# executed page imports) gives the very module object at its new path: an alias, not a copy, so monkeypatching
# and private names behave as before.
MOVED = {
    "functional": "fnnet.lessons.functional",
    "modules": "fnnet.lessons.modules",
    "sine": "fnnet.lessons.sine",
    "config": "fnnet.training.config",
    "core": "fnnet.training.core",
    "loop": "fnnet.training.loop",
    "hooks": "fnnet.training.hooks",
    "train": "fnnet.training.flat_train",
    "optimizers": "fnnet.training.optimizers",
    "sweep": "fnnet.training.sweep",
    "checkpoint": "fnnet.runtime.checkpoint",
    "signals": "fnnet.runtime.signals",
    "distributed": "fnnet.runtime.distributed",
    "placement": "fnnet.runtime.placement",
    "torch_ref": "fnnet.parity.torch_ref",
    "compare": "fnnet.parity.compare",
    "notebook": "fnnet.parity.proof",
    "bench": "fnnet.cli.bench",
    "report": "fnnet.cli.report",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``fnnet.<old name>`` to the module at its new path (``MOVED``)."""

    def find_spec(self, fullname, path=None, target=None):
        del path, target
        old = fullname.removeprefix("fnnet.")
        if fullname.startswith("fnnet.") and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name.removeprefix("fnnet.")])

    def exec_module(self, module):
        del module  # already executed under its new name


if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedFinder())


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES or name in MOVED:
        return importlib.import_module(MOVED.get(name, f"fnnet.{name}"))
    raise AttributeError(f"module 'fnnet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES) | set(MOVED))
