"""``fnnet.train``, the module of the flat layout that ``fit`` came from: its names, re-exported from their homes.

The layout moved ``fit`` to ``fnnet.training.fit`` and the pieces ``fnnet.train``
also offered to their own modules; ``import fnnet.train`` gives this module (see
``fnnet.MOVED``), so code written against the old layout keeps running. New code
imports from the homes named below.
"""

from fnnet.data import MAX_STEPS, check_memory, run_keys  # noqa: F401
from fnnet.lessons import LESSONS  # noqa: F401
from fnnet.runtime.placement import data_parallel, host_value, resolve_device, resolve_devices  # noqa: F401
from fnnet.training.config import DEFAULT_LOG_EVERY, DEFAULT_STEPS  # noqa: F401
from fnnet.training.core import (TrainState, enable_compilation_cache, epoch_order, minibatch, step_key,  # noqa: F401
                                 step_keys, take_rows, train_step)
from fnnet.training.fit import FitResult, fit  # noqa: F401
from fnnet.training.loop import Progress, StopTraining  # noqa: F401
