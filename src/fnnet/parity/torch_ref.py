"""Every lesson written in PyTorch (the NumPy warm-ups in NumPy), the way the tutorial writes them.

This is the other side of every comparison: eager PyTorch with ``loss.item()``
each step, ``zero_grad``/``backward``/``step``, in-place updates under
``torch.no_grad()``. Each ``run_*`` function trains from the weights it is given
and returns a ``TorchRun``: the loss of every step (before its update), the
gradients of step 0, and the seconds the loop took. ``DynamicNet`` takes its
per-step depth from a schedule, so a JAX run can use the same one.

Needs PyTorch (``pip install -e ".[compare]"``); ``import fnnet`` does not.
"""

from __future__ import annotations

import random
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np

from fnnet.data import Sizes
from fnnet.errors import ConfigError
from fnnet.lessons import LESSONS, Lesson, get_lesson


def require_torch():
    """Import and return ``torch``, or raise ConfigError with one line saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ConfigError(
            'this needs PyTorch, which is not installed: pip install -e ".[compare]" (or torch==2.13.0)'
        ) from None
    return torch


torch = require_torch()


class TorchRun(NamedTuple):
    """What one reference run records."""

    losses: np.ndarray  # (steps,) loss before each step's update
    grads: dict[str, np.ndarray]  # gradients at step 0, by parameter name (torch's layout)
    seconds: float  # wall time of the training loop
    params: dict | None = None  # the trained parameters by torch name (the sine edition's references fill it)


# ---------------------------------------------------------------- models


class MyReLU(torch.autograd.Function):
    """ReLU with a hand-written backward, as in the tutorial."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        grad_x = grad_output.clone()
        grad_x[x < 0] = 0
        return grad_x


def sequential(sizes: Sizes) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(sizes.d_in, sizes.hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(sizes.hidden, sizes.d_out),
    )


class TwoLayerNet(torch.nn.Module):
    def __init__(self, sizes: Sizes):
        super().__init__()
        self.linear1 = torch.nn.Linear(sizes.d_in, sizes.hidden)
        self.linear2 = torch.nn.Linear(sizes.hidden, sizes.d_out)

    def forward(self, x):
        return self.linear2(self.linear1(x).clamp(min=0))


class DynamicNet(torch.nn.Module):
    """The tutorial's DynamicNet; the depth comes from a schedule (``random.randint(0, 3)`` past its end)."""

    def __init__(self, sizes: Sizes, depths: Sequence[int] = ()):
        super().__init__()
        self.input_linear = torch.nn.Linear(sizes.d_in, sizes.hidden)
        self.middle_linear = torch.nn.Linear(sizes.hidden, sizes.hidden)
        self.output_linear = torch.nn.Linear(sizes.hidden, sizes.d_out)
        self.depths = list(depths)
        self.calls = 0

    def forward(self, x):
        h_relu = self.input_linear(x).clamp(min=0)
        depth = self.depths[self.calls] if self.calls < len(self.depths) else random.randint(0, 3)  # the tutorial's
        for _ in range(depth):
            h_relu = self.middle_linear(h_relu).clamp(min=0)
        self.calls += 1
        return self.output_linear(h_relu)


def initial(lesson_id: str, sizes: Sizes, seed: int):
    """The tutorial's start for a lesson: ``(weights, x, y)``, drawn the way the tutorial draws them.

    ``weights`` is ``{"w1", "w2"}`` (NumPy float64 for the NumPy lesson, torch
    float32 otherwise) or a torch module with torch's default init. Data is
    ``randn`` in both cases. A sine lesson's start is ``sine_initial``'s (``sizes`` unused).

    Examples:
      >>> start, x, y = initial("nn", Sizes(4, 6, 5, 2), 0)
      >>> type(start).__name__, tuple(x.shape), tuple(y.shape)
      ('Sequential', (4, 6), (4, 2))
    """
    lesson = get_lesson(lesson_id)
    if lesson.edition == "sine":
        return sine_initial(lesson_id, seed)
    if lesson.in_numpy:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((sizes.batch, sizes.d_in))
        y = rng.standard_normal((sizes.batch, sizes.d_out))
        w = {"w1": rng.standard_normal((sizes.d_in, sizes.hidden)),
             "w2": rng.standard_normal((sizes.hidden, sizes.d_out))}
        return w, x, y
    torch.manual_seed(seed)
    x = torch.randn(sizes.batch, sizes.d_in)
    y = torch.randn(sizes.batch, sizes.d_out)
    if lesson.torch_module:
        return build_module(lesson, sizes), x, y
    return {"w1": torch.randn(sizes.d_in, sizes.hidden), "w2": torch.randn(sizes.hidden, sizes.d_out)}, x, y


# ---------------------------------------------------------------- lessons with raw weights


def run_numpy(w, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``numpy``: forward and backward by hand in NumPy, in place."""
    w1, w2 = w["w1"].copy(), w["w2"].copy()
    losses, grads = np.empty(steps), {}
    start = time.perf_counter()
    for t in range(steps):
        h = x.dot(w1)
        h_relu = np.maximum(h, 0)
        y_pred = h_relu.dot(w2)
        losses[t] = np.square(y_pred - y).sum()

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_h[h < 0] = 0
        grad_w1 = x.T.dot(grad_h)
        if t == 0:
            grads = {"w1": grad_w1.copy(), "w2": grad_w2.copy()}
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return TorchRun(losses, grads, time.perf_counter() - start, _weights(w1, w2))


def run_tensors(w, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``tensors``: the same by hand with torch tensors (``mm``, ``clamp``, ``clone``)."""
    w1, w2 = w["w1"].clone(), w["w2"].clone()
    losses, grads = np.empty(steps), {}
    start = time.perf_counter()
    for t in range(steps):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        losses[t] = (y_pred - y).pow(2).sum().item()

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(w2.t()).clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)
        if t == 0:
            grads = {"w1": grad_w1.numpy().copy(), "w2": grad_w2.numpy().copy()}
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return TorchRun(losses, grads, time.perf_counter() - start, _weights(w1, w2))


def _run_autograd(w, x, y, *, steps, lr, relu) -> TorchRun:
    w1 = w["w1"].clone().requires_grad_(True)
    w2 = w["w2"].clone().requires_grad_(True)
    losses, grads = np.empty(steps), {}
    start = time.perf_counter()
    for t in range(steps):
        y_pred = relu(x.mm(w1)).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses[t] = loss.item()
        loss.backward()
        if t == 0:
            grads = {"w1": w1.grad.numpy().copy(), "w2": w2.grad.numpy().copy()}
        with torch.no_grad():
            w1 -= lr * w1.grad
            w2 -= lr * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return TorchRun(losses, grads, time.perf_counter() - start, _weights(w1, w2))


def _weights(w1, w2) -> dict[str, np.ndarray]:
    """The trained raw weights as NumPy copies (the seconds are taken before this)."""
    return {"w1": np.array(_plain(w1), copy=True), "w2": np.array(_plain(w2), copy=True)}


def run_autograd(w, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``autograd``: ``requires_grad`` weights, ``loss.backward()``."""
    return _run_autograd(w, x, y, steps=steps, lr=lr, relu=lambda h: h.clamp(min=0))


def run_custom_function(w, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``custom_function``: the same with ``MyReLU.apply``."""
    return _run_autograd(w, x, y, steps=steps, lr=lr, relu=MyReLU.apply)


# ---------------------------------------------------------------- lessons with nn modules


def _run_module(model, x, y, *, steps, update) -> TorchRun:
    loss_fn = torch.nn.MSELoss(reduction="sum")
    losses, grads = np.empty(steps), {}
    start = time.perf_counter()
    for t in range(steps):
        loss = loss_fn(model(x), y)
        losses[t] = loss.item()
        # Zeros, not None: since torch 2.0 zero_grad() sets grads to None, and an optimizer skips a
        # parameter whose grad is None. When DynamicNet draws depth 0 its middle layer gets no grad,
        # so torch 2 would skip its momentum step; a JAX gradient is a zero array and the momentum
        # step still happens, as it did in torch 1.x when the tutorial was written.
        model.zero_grad(set_to_none=False)
        loss.backward()
        if t == 0:
            grads = {name: (torch.zeros_like(p) if p.grad is None else p.grad).detach().numpy().copy()
                     for name, p in model.named_parameters()}  # None: not used at step 0 (depth 0)
        update()
    seconds = time.perf_counter() - start
    return TorchRun(losses, grads, seconds, {name: p.detach().numpy().copy() for name, p in model.named_parameters()})


def run_nn(model, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``nn``: ``nn.Sequential``, sum-of-squares loss, update by hand under ``no_grad``."""

    def update():
        with torch.no_grad():
            for param in model.parameters():
                param -= lr * param.grad

    return _run_module(model, x, y, steps=steps, update=update)


def _optimizer_run(make_optimizer):
    def run(model, x, y, *, steps, lr) -> TorchRun:
        optimizer = make_optimizer(model.parameters(), lr)
        return _run_module(model, x, y, steps=steps, update=optimizer.step)

    return run


run_optim = _optimizer_run(lambda params, lr: torch.optim.Adam(params, lr=lr))
run_optim.__doc__ = "Lesson ``optim``: ``torch.optim.Adam``."
run_custom_module = _optimizer_run(lambda params, lr: torch.optim.SGD(params, lr=lr))
run_custom_module.__doc__ = "Lesson ``custom_module``: ``TwoLayerNet`` with ``torch.optim.SGD``."
_run_momentum = _optimizer_run(lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9))


def run_control_flow(model, x, y, *, steps, lr, depths) -> TorchRun:
    """Lesson ``control_flow``: ``DynamicNet`` with SGD momentum 0.9; step t reuses the middle layer depths[t] times."""
    if len(depths) < steps:
        raise ConfigError(f"control_flow needs a depth for each of {steps} steps, got {len(depths)}")
    model.depths, model.calls = [int(d) for d in depths], 0
    return _run_momentum(model, x, y, steps=steps, lr=lr)


# ---------------------------------------------------------------- the sine edition
#
# y = sin(x) on torch.linspace(-pi, pi, 2000); the loss is the sum of squared errors; every loop below is the
# tutorial's (pytorch.org, since Dec 2020), with the loss recorded before each update.


class LegendrePolynomial3(torch.autograd.Function):
    """P3(z) = (5 z^3 - 3 z) / 2 with a hand-written backward, as in the tutorial."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return 0.5 * (5 * z**3 - 3 * z)

    @staticmethod
    def backward(ctx, grad_output):
        (z,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * z**2 - 1)


class Polynomial3(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c, self.d = (torch.nn.Parameter(torch.randn(())) for _ in range(4))

    def forward(self, x):
        return self.a + self.b * x + self.c * x**2 + self.d * x**3


class SineDynamicNet(torch.nn.Module):
    """The tutorial's sine DynamicNet; the extra terms come from a schedule (``random`` as the tutorial past its end)."""

    def __init__(self, extra: Sequence[int] = ()):
        super().__init__()
        self.a, self.b, self.c, self.d, self.e = (torch.nn.Parameter(torch.randn(())) for _ in range(5))
        self.extra = list(extra)
        self.calls = 0

    def forward(self, x):
        y = self.a + self.b * x + self.c * x**2 + self.d * x**3
        extra = self.extra[self.calls] if self.calls < len(self.extra) else random.randint(4, 6) - 4  # the tutorial's
        for exp in range(4, 4 + extra):  # the tutorial: range(4, random.randint(4, 6))
            y = y + self.e * x**exp
        self.calls += 1
        return y


def sine_linear(sizes=None) -> torch.nn.Sequential:
    """The tutorial's ``Sequential(Linear(3, 1), Flatten(0, 1))`` (``sizes`` unused)."""
    return torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))


def sine_initial(lesson_id: str, seed: int):
    """The tutorial's start for a sine lesson: ``(start, x, y)``.

    ``x`` is ``linspace(-pi, pi, 2000)`` and ``y = sin(x)``: NumPy float64 for
    ``sine_numpy``, torch float32 otherwise (``sine_nn``/``sine_optim`` get the
    features ``x.unsqueeze(-1).pow((1, 2, 3))``, (2000, 3)). ``start`` is
    ``{"a", "b", "c", "d"}`` drawn with ``randn`` (fixed for the custom
    function: 0, -1, 0, 0.3) or the lesson's torch module.
    """
    import math

    lesson = get_lesson(lesson_id)
    if lesson.in_numpy:
        rng = np.random.default_rng(seed)
        x = np.linspace(-math.pi, math.pi, 2000)
        return {name: rng.standard_normal() for name in "abcd"}, x, np.sin(x)
    torch.manual_seed(seed)
    x = torch.linspace(-math.pi, math.pi, 2000, dtype=torch.float)
    y = torch.sin(x)
    if lesson.torch_module == sine_linear.__name__:  # a linear layer over the features (x, x^2, x^3)
        return sine_linear(), x.unsqueeze(-1).pow(torch.tensor([1, 2, 3])), y
    if lesson.torch_module:
        return build_module(lesson), x, y
    if lesson.model == "legendre3":  # a + b P3(c + d x) starts where the tutorial sets it
        values = {"a": 0.0, "b": -1.0, "c": 0.0, "d": 0.3}
        return {k: torch.full((), v, dtype=torch.float) for k, v in values.items()}, x, y
    return {name: torch.randn((), dtype=torch.float) for name in "abcd"}, x, y


def _sine_loop(steps, body, final) -> TorchRun:
    losses, grads = np.empty(steps), {}
    start = time.perf_counter()
    for t in range(steps):
        losses[t], step_grads = body(t)
        if t == 0:
            grads = step_grads
    seconds = time.perf_counter() - start
    return TorchRun(losses, grads, seconds, {k: np.asarray(_plain(v)) for k, v in final().items()})


def _plain(v):
    return v.detach().numpy().copy() if hasattr(v, "detach") else v


def run_sine_numpy(w, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``sine_numpy``: the cubic and its gradients by hand in NumPy."""
    a, b, c, d = (float(w[k]) for k in "abcd")

    def body(t):
        nonlocal a, b, c, d
        y_pred = a + b * x + c * x**2 + d * x**3
        loss = np.square(y_pred - y).sum()
        grad_y_pred = 2.0 * (y_pred - y)
        g = {"a": grad_y_pred.sum(), "b": (grad_y_pred * x).sum(), "c": (grad_y_pred * x**2).sum(),
             "d": (grad_y_pred * x**3).sum()}
        a, b, c, d = a - lr * g["a"], b - lr * g["b"], c - lr * g["c"], d - lr * g["d"]
        return loss, {k: np.asarray(v) for k, v in g.items()}

    return _sine_loop(steps, body, lambda: {"a": a, "b": b, "c": c, "d": d})


def run_sine_tensors(w, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``sine_tensors``: the same with torch tensors."""
    a, b, c, d = (w[k].clone() for k in "abcd")

    def body(t):
        nonlocal a, b, c, d
        y_pred = a + b * x + c * x**2 + d * x**3
        loss = (y_pred - y).pow(2).sum().item()
        grad_y_pred = 2.0 * (y_pred - y)
        g = {"a": grad_y_pred.sum(), "b": (grad_y_pred * x).sum(), "c": (grad_y_pred * x**2).sum(),
             "d": (grad_y_pred * x**3).sum()}
        a, b, c, d = a - lr * g["a"], b - lr * g["b"], c - lr * g["c"], d - lr * g["d"]
        return loss, {k: v.numpy().copy() for k, v in g.items()}

    return _sine_loop(steps, body, lambda: {"a": a, "b": b, "c": c, "d": d})


def _run_sine_autograd(w, x, y, *, steps, lr, forward) -> TorchRun:
    params = {k: w[k].clone().requires_grad_(True) for k in "abcd"}

    def body(t):
        loss = (forward(params, x) - y).pow(2).sum()
        value = loss.item()
        loss.backward()
        g = {k: p.grad.numpy().copy() for k, p in params.items()}
        with torch.no_grad():
            for p in params.values():
                p -= lr * p.grad
                p.grad = None  # the tutorial's way of zeroing
        return value, g

    return _sine_loop(steps, body, lambda: params)


def run_sine_autograd(w, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``sine_autograd``: ``requires_grad`` scalars and ``loss.backward()``."""
    return _run_sine_autograd(w, x, y, steps=steps, lr=lr,
                              forward=lambda p, x: p["a"] + p["b"] * x + p["c"] * x**2 + p["d"] * x**3)


def run_sine_custom_function(w, x, y, *, steps, lr) -> TorchRun:
    """Lesson ``sine_custom_function``: ``a + b * LegendrePolynomial3.apply(c + d * x)``."""
    return _run_sine_autograd(w, x, y, steps=steps, lr=lr,
                              forward=lambda p, x: p["a"] + p["b"] * LegendrePolynomial3.apply(p["c"] + p["d"] * x))


run_sine_nn = run_nn  # Sequential(Linear(3, 1), Flatten(0, 1)) on the features; update by hand under no_grad
run_sine_optim = _optimizer_run(lambda params, lr: torch.optim.RMSprop(params, lr=lr))
run_sine_optim.__doc__ = "Lesson ``sine_optim``: ``torch.optim.RMSprop`` (alpha 0.99, eps 1e-8)."
run_sine_custom_module = _optimizer_run(lambda params, lr: torch.optim.SGD(params, lr=lr))
run_sine_custom_module.__doc__ = "Lesson ``sine_custom_module``: ``Polynomial3`` with ``torch.optim.SGD``."


def run_sine_control_flow(model, x, y, *, steps, lr, depths) -> TorchRun:
    """Lesson ``sine_control_flow``: step t adds ``depths[t]`` (0..2) of the terms e x^4, e x^5; SGD momentum 0.9."""
    if len(depths) < steps:
        raise ConfigError(f"sine_control_flow needs a number of extra terms for each of {steps} steps, got {len(depths)}")
    model.extra, model.calls = [int(d) for d in depths], 0
    return _run_momentum(model, x, y, steps=steps, lr=lr)


# ---------------------------------------------------------------- each lesson's reference, read from its record


def build_module(lesson: Lesson, sizes: Sizes | None = None) -> torch.nn.Module:
    """A fresh torch module of ``lesson`` (its record's ``torch_module``), torch's default init.

    The classic edition's modules take the sizes; the sine edition's have fixed shapes.

    Examples:
      >>> type(build_module(get_lesson("custom_module"), Sizes(4, 6, 5, 2))).__name__
      'TwoLayerNet'
      >>> sorted(n for n, _ in build_module(get_lesson("sine_control_flow")).named_parameters())
      ['a', 'b', 'c', 'd', 'e']
    """
    if not lesson.torch_module:
        raise ConfigError(f"lesson {lesson.id!r} trains raw weights, not a torch module")
    builder = globals()[lesson.torch_module]
    return builder() if lesson.edition == "sine" else builder(sizes)


def _module_builder(lesson: Lesson) -> Callable[..., torch.nn.Module]:
    def build(sizes: Sizes | None = None) -> torch.nn.Module:
        return build_module(lesson, sizes)

    build.__name__ = build.__qualname__ = lesson.torch_module
    return build


MODULES: dict[str, Callable[..., torch.nn.Module]] = {
    lesson.id: _module_builder(lesson) for lesson in LESSONS.values() if lesson.torch_module}
"""Lesson id -> a builder of the torch module it trains, ``MODULES[id](sizes)`` (the sine edition's take no sizes;
the lessons with raw weights or scalars have none). Built from the records' ``torch_module``."""

RUNS: dict[str, Callable[..., TorchRun]] = {lesson.id: globals()[lesson.torch_run] for lesson in LESSONS.values()}
"""Lesson id -> its reference training loop (the records' ``torch_run``)."""
