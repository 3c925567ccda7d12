"""The steps of the tutorial as data: one ``Lesson`` record per step, for both editions.

Every fact about a lesson lives on its record: its model, how its gradient is
computed, where it runs, its default optimizer and rates, how its page's cells
take their start, the PyTorch reference it is compared with and the tutorial's
own file. Consecutive lessons differ in one of these fields. The ``classic``
edition (the seed's two-layer net on random data) comes first; the ``sine``
edition (pytorch.org's today: polynomial fits of sin(x), see
``fnnet.lessons.sine``) follows with the same eight steps.

This module imports nothing heavy (the command's parser reads it). The lesson
models live beside it: ``functional`` (the two-layer pieces), ``modules`` (the
nnx lessons), ``sine`` (the sine edition's polynomials), and ``models`` turns a
record and sizes into the functions the training loop takes; its names are
reachable from here too (``fnnet.lessons.lesson_model``).

Examples:
  >>> LESSONS["control_flow"].max_draw, LESSONS["sine_optim"].chaotic
  (3, True)
  >>> LESSONS["custom_module"].torch_module, LESSONS["numpy"].torch_run
  ('TwoLayerNet', 'run_numpy')
"""

from __future__ import annotations

import difflib
import importlib
from typing import NamedTuple

from fnnet.errors import ConfigError

CLASSIC_SOURCE = "https://github.com/jcjohnson/pytorch-examples/blob/master/"
SINE_SOURCE = "https://github.com/pytorch/tutorials/blob/main/beginner_source/"

FAMILY_RATES: dict[str, dict[str, float]] = {
    # the raw-weights lessons (numpy .. custom_function): randn weights, a loss near 3e7 at the start
    "weights": {"sgd-by-hand": 1e-6,  # the tutorial's
                "sgd": 1e-6,
                "momentum": 1e-7,  # momentum 0.9 steps ~10x further: 1e-6 diverges
                "adam": 1e-2,  # Adam's step is ~lr per weight whatever the loss scale; the weights are ~1
                "rmsprop": 1e-3},  # like Adam a step of ~lr per weight; 3e-3 and up jitter far above the floor
    # the nn family (nn .. control_flow): torch-style init, a loss near 600 at the start
    "module": {"sgd-by-hand": 1e-4, "sgd": 1e-4, "momentum": 1e-4, "adam": 1e-4, "rmsprop": 1e-4},
    # the sine edition: a cubic in x on [-pi, pi]; the x^3 feature (up to 31) sets the largest stable step
    "sine": {"sgd-by-hand": 1e-6,  # the tutorial's
             "sgd": 1e-6, "momentum": 1e-7, "adam": 1e-2,
             "rmsprop": 1e-3},  # the tutorial's
    # sine_custom_function: a + b P3(c + d x) from the tutorial's start is flatter; SGD runs at its 5e-6
    "sine_legendre": {"sgd-by-hand": 5e-6, "sgd": 5e-6,
                      "momentum": 5e-7,  # a tenth of SGD's rate, as momentum 0.9 steps ~10x further
                      "adam": 1e-2, "rmsprop": 1e-3},
    # sine_control_flow: its x^4 and x^5 terms (up to 306) make the loss ~300x steeper; SGD above ~5e-8 diverges
    "sine_dynamic": {"sgd-by-hand": 3e-8, "sgd": 3e-8,
                     "momentum": 1e-8,  # the tutorial's
                     "adam": 1e-2, "rmsprop": 1e-3},
    # your own model (fnnet.Model or an nnx.Module)
    "own": {"adam": 1e-3, "sgd": 1e-2, "momentum": 1e-2, "sgd-by-hand": 1e-2, "rmsprop": 1e-3},
}
"""Model family -> optimizer name -> the learning rate used when none is given (measured; see the comments)."""


class Lesson(NamedTuple):
    """One step of the tutorial, and every fact about it.

    Attributes:
      id: the public id (``"numpy"`` ... ``"control_flow"``, ``"sine_numpy"`` ...).
      title: the tutorial's name for the step.
      idea: what this step changes, in one line.
      model: name of the model (a key of ``fnnet.lessons.models.MODELS``).
      gradient: ``"by hand"`` (``manual_grads``) or ``"jax.grad"``.
      backend: ``"numpy"`` (float64, a Python loop) or ``"jax"`` (float32, compiled).
      optimizer: default optimizer, a key of ``fnnet.training.optimizers.OPTIMIZERS``.
      lr: default learning rate (the tutorial's).
      edition: ``"classic"`` (the seed's two-layer net on random data) or
        ``"sine"`` (a polynomial fit of sin(x)).
      steps: default training steps (the tutorial's).
      print_every: the tutorial prints the loss when ``t % print_every == print_every - 1``.
      family: the model family whose default rates it uses (a key of ``FAMILY_RATES``).
      cell: how its page's program cells take their start (``fnnet.parity.proof``):
        ``"weights"`` (w1, w2), ``"scalars"`` (a, b, c, d), ``"model"`` or
        ``"dynamic"`` (a model and a per-step schedule).
      max_draw: the dynamic lessons' per-step draw, ``random.randint(0, max_draw)``
        (layers reused, or extra terms); None for the others.
      chaotic: its curves are compared step by step only up to the
        predictability horizon (``fnnet.parity.compare.predictability_horizon``).
      torch_run: the function of ``fnnet.parity.torch_ref`` that trains it as the tutorial does.
      torch_module: the builder of its torch module in ``fnnet.parity.torch_ref``
        (None for the lessons with raw weights or scalars).
      original: the tutorial's own file for this step.
    """

    id: str
    title: str
    idea: str
    model: str
    gradient: str
    backend: str
    optimizer: str
    lr: float
    edition: str = "classic"
    steps: int = 500
    print_every: int = 100
    family: str = "module"
    cell: str = "model"
    max_draw: int | None = None
    chaotic: bool = False
    torch_run: str = ""
    torch_module: str | None = None
    original: str = ""

    @property
    def rates(self) -> dict[str, float]:
        """Optimizer name -> its default rate for this lesson (the lesson's own optimizer at the tutorial's rate).

        Examples:
          >>> LESSONS["tensors"].rates["adam"], LESSONS["tensors"].rates["sgd-by-hand"]
          (0.01, 1e-06)
        """
        return {**FAMILY_RATES[self.family], self.optimizer: self.lr}

    @property
    def in_numpy(self) -> bool:
        """It runs in NumPy float64 (a Python loop), not in JAX."""
        return self.backend == NUMPY

    @property
    def tutorial(self) -> str:
        """The address of the tutorial's own file for this step."""
        return (SINE_SOURCE if self.edition == "sine" else CLASSIC_SOURCE) + self.original


EDITIONS = ("classic", "sine")
NUMPY, JAX = "numpy", "jax"  # the backends a lesson runs in (``Lesson.backend``); "numpy" is also a lesson id

_S = {"edition": "sine", "steps": 2000}  # the sine edition: y = sin(x) on 2000 points of [-pi, pi]
_ALL = [
    Lesson("numpy", "Warm-up: NumPy", "forward and backward by hand, in NumPy float64",
           "weights", "by hand", "numpy", "sgd-by-hand", 1e-6, family="weights", cell="weights",
           torch_run="run_numpy", original="tensor/two_layer_net_numpy.py"),
    Lesson("tensors", "Tensors", "the same by hand, in jax.numpy under jit",
           "weights", "by hand", "jax", "sgd-by-hand", 1e-6, family="weights", cell="weights",
           torch_run="run_tensors", original="tensor/two_layer_net_tensor.py"),
    Lesson("autograd", "Autograd", "jax.grad of the loss replaces the hand-written backward",
           "weights", "jax.grad", "jax", "sgd-by-hand", 1e-6, family="weights", cell="weights",
           torch_run="run_autograd", original="autograd/two_layer_net_autograd.py"),
    Lesson("custom_function", "Defining new autograd functions", "a jax.custom_vjp ReLU (MyReLU)",
           "weights+my_relu", "jax.grad", "jax", "sgd-by-hand", 1e-6, family="weights", cell="weights",
           torch_run="run_custom_function", original="autograd/two_layer_net_custom_function.py"),
    Lesson("nn", "nn module", "flax nnx layers with biases, torch-style init",
           "nnx.Sequential", "jax.grad", "jax", "sgd-by-hand", 1e-4,
           torch_run="run_nn", torch_module="sequential", original="nn/two_layer_net_nn.py"),
    Lesson("optim", "optim", "optax.adam does the update",
           "nnx.Sequential", "jax.grad", "jax", "adam", 1e-4,
           torch_run="run_optim", torch_module="sequential", original="nn/two_layer_net_optim.py"),
    Lesson("custom_module", "Custom nn Modules", "a TwoLayerNet(nnx.Module), optax.sgd",
           "TwoLayerNet", "jax.grad", "jax", "sgd", 1e-4,
           torch_run="run_custom_module", torch_module="TwoLayerNet", original="nn/two_layer_net_module.py"),
    Lesson("control_flow", "Control flow + weight sharing",
           "DynamicNet: one middle layer reused 0-3 times, depth drawn per step",
           "DynamicNet", "jax.grad", "jax", "momentum", 1e-4, cell="dynamic", max_draw=3,
           torch_run="run_control_flow", torch_module="DynamicNet", original="nn/dynamic_net.py"),
    Lesson("sine_numpy", "Warm-up: NumPy", "a cubic fitted by hand in NumPy float64",
           "cubic", "by hand", "numpy", "sgd-by-hand", 1e-6, **_S, family="sine", cell="scalars",
           torch_run="run_sine_numpy", original="examples_tensor/polynomial_numpy.py"),
    Lesson("sine_tensors", "Tensors", "the same by hand, in jax.numpy under jit",
           "cubic", "by hand", "jax", "sgd-by-hand", 1e-6, **_S, family="sine", cell="scalars",
           torch_run="run_sine_tensors", original="examples_tensor/polynomial_tensor.py"),
    Lesson("sine_autograd", "Autograd", "jax.grad of the loss replaces the hand-written backward",
           "cubic", "jax.grad", "jax", "sgd-by-hand", 1e-6, **_S, family="sine", cell="scalars",
           torch_run="run_sine_autograd", original="examples_autograd/polynomial_autograd.py"),
    Lesson("sine_custom_function", "Defining new autograd functions",
           "a + b P3(c + d x), P3 a jax.custom_vjp (LegendrePolynomial3)",
           "legendre3", "jax.grad", "jax", "sgd-by-hand", 5e-6, **_S, family="sine_legendre", cell="scalars",
           torch_run="run_sine_custom_function", original="examples_autograd/polynomial_custom_function.py"),
    Lesson("sine_nn", "nn module", "features (x, x^2, x^3) into an nnx.Linear(3, 1)",
           "nnx.Linear(3, 1)", "jax.grad", "jax", "sgd-by-hand", 1e-6, **_S, family="sine",
           torch_run="run_sine_nn", torch_module="sine_linear", original="examples_nn/polynomial_nn.py"),
    Lesson("sine_optim", "optim", "RMSprop as torch computes it does the update",
           "nnx.Linear(3, 1)", "jax.grad", "jax", "rmsprop", 1e-3, **_S, family="sine", chaotic=True,
           torch_run="run_sine_optim", torch_module="sine_linear", original="examples_nn/polynomial_optim.py"),
    Lesson("sine_custom_module", "Custom nn Modules", "a Polynomial3(nnx.Module), optax.sgd",
           "Polynomial3", "jax.grad", "jax", "sgd", 1e-6, **_S, family="sine",
           torch_run="run_sine_custom_module", torch_module="Polynomial3", original="examples_nn/polynomial_module.py"),
    Lesson("sine_control_flow", "Control flow + weight sharing",
           "DynamicNet: e x^4 and e x^5 added 0-2 times per step, e shared",
           "SineDynamicNet", "jax.grad", "jax", "momentum", 1e-8, "sine", 30000, 2000, family="sine_dynamic",
           cell="dynamic", max_draw=2, torch_run="run_sine_control_flow", torch_module="SineDynamicNet",
           original="examples_nn/dynamic_net.py"),
]
LESSONS: dict[str, Lesson] = {lesson.id: lesson for lesson in _ALL}
"""Lesson id -> Lesson, in tutorial order: the classic edition, then the sine edition.

Examples:
  >>> list(LESSONS)[:8]
  ['numpy', 'tensors', 'autograd', 'custom_function', 'nn', 'optim', 'custom_module', 'control_flow']
  >>> LESSONS["optim"].optimizer, LESSONS["optim"].lr
  ('adam', 0.0001)
  >>> LESSONS["sine_optim"].optimizer, LESSONS["sine_optim"].steps
  ('rmsprop', 2000)
"""


def edition_ids(edition: str) -> list[str]:
    """The lesson ids of an edition (``"classic"`` or ``"sine"``), or of both (``"all"``), in tutorial order.

    Examples:
      >>> edition_ids("sine")[:3]
      ['sine_numpy', 'sine_tensors', 'sine_autograd']
      >>> len(edition_ids("all"))
      16
    """
    if edition == "all":
        return list(LESSONS)
    if edition not in EDITIONS:
        raise ConfigError(f"unknown edition {edition!r}; expected one of: {', '.join(EDITIONS)}, all")
    return [lesson.id for lesson in LESSONS.values() if lesson.edition == edition]


def get_lesson(lesson_id: str) -> Lesson:
    """The lesson called ``lesson_id``; a ConfigError listing the ids (and the nearest one) if there is none.

    Examples:
      >>> get_lesson("nn").model
      'nnx.Sequential'
      >>> get_lesson("optm")
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: unknown lesson 'optm'; did you mean 'optim'? expected one of: numpy, tensors, autograd, custom_function, nn, optim, custom_module, control_flow, sine_numpy, sine_tensors, sine_autograd, sine_custom_function, sine_nn, sine_optim, sine_custom_module, sine_control_flow
    """
    if not isinstance(lesson_id, str) or lesson_id not in LESSONS:
        near = difflib.get_close_matches(lesson_id, LESSONS, n=1) if isinstance(lesson_id, str) else []
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(f"unknown lesson {lesson_id!r}; {hint}expected one of: {', '.join(LESSONS)}")
    return LESSONS[lesson_id]




def _models():
    return importlib.import_module("fnnet.lessons.models")


_MODEL_NAMES = ("MODELS", "LessonFunctions", "lesson_model", "lesson_functions", "sizes_of", "init_params", "to_backend")


def __getattr__(name):
    """The model-building names of ``fnnet.lessons.models`` (they import JAX), loaded on first use."""
    if name in _MODEL_NAMES:
        return getattr(_models(), name)
    raise AttributeError(f"module 'fnnet.lessons' has no attribute {name!r}")
