"""The eight lessons written in PyTorch (and the first in NumPy), the way the tutorial writes them.

This is the other side of every comparison: eager PyTorch with ``loss.item()``
each step, ``zero_grad``/``backward``/``step``, in-place updates under
``torch.no_grad()``. Each ``run_*`` function trains from the weights it is given
and returns a ``TorchRun``: the loss of every step (before its update), the
gradients of step 0, and the seconds the loop took. ``DynamicNet`` takes its
per-step depth from a schedule, so a JAX run can use the same one.

Needs PyTorch (``pip install -e ".[compare]"``); ``import fnnet`` does not.
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple, Sequence

import numpy as np

from fnnet.data import Sizes
from fnnet.errors import ConfigError


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
    """The tutorial's DynamicNet, except that the depth comes from a schedule instead of ``random``."""

    def __init__(self, sizes: Sizes, depths: Sequence[int] = ()):
        super().__init__()
        self.input_linear = torch.nn.Linear(sizes.d_in, sizes.hidden)
        self.middle_linear = torch.nn.Linear(sizes.hidden, sizes.hidden)
        self.output_linear = torch.nn.Linear(sizes.hidden, sizes.d_out)
        self.depths = list(depths)
        self.calls = 0

    def forward(self, x):
        h_relu = self.input_linear(x).clamp(min=0)
        for _ in range(self.depths[self.calls]):
            h_relu = self.middle_linear(h_relu).clamp(min=0)
        self.calls += 1
        return self.output_linear(h_relu)


MODULES: dict[str, Callable[[Sizes], torch.nn.Module]] = {
    "nn": sequential,
    "optim": sequential,
    "custom_module": TwoLayerNet,
    "control_flow": DynamicNet,
}
"""Lesson id -> the torch module it trains (the lessons with raw weights have none)."""


def initial(lesson_id: str, sizes: Sizes, seed: int):
    """The tutorial's start for a lesson: ``(weights, x, y)``, drawn the way the tutorial draws them.

    ``weights`` is ``{"w1", "w2"}`` (NumPy float64 for ``numpy``, torch float32
    otherwise) or a torch module with torch's default init. Data is
    ``randn`` in both cases.
    """
    if lesson_id == "numpy":
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((sizes.batch, sizes.d_in))
        y = rng.standard_normal((sizes.batch, sizes.d_out))
        w = {"w1": rng.standard_normal((sizes.d_in, sizes.hidden)),
             "w2": rng.standard_normal((sizes.hidden, sizes.d_out))}
        return w, x, y
    torch.manual_seed(seed)
    x = torch.randn(sizes.batch, sizes.d_in)
    y = torch.randn(sizes.batch, sizes.d_out)
    if lesson_id in MODULES:
        return MODULES[lesson_id](sizes), x, y
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
    return TorchRun(losses, grads, time.perf_counter() - start)


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
    return TorchRun(losses, grads, time.perf_counter() - start)


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
    return TorchRun(losses, grads, time.perf_counter() - start)


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
    return TorchRun(losses, grads, time.perf_counter() - start)


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


RUNS: dict[str, Callable[..., TorchRun]] = {
    "numpy": run_numpy,
    "tensors": run_tensors,
    "autograd": run_autograd,
    "custom_function": run_custom_function,
    "nn": run_nn,
    "optim": run_optim,
    "custom_module": run_custom_module,
    "control_flow": run_control_flow,
}
"""Lesson id -> its reference training loop."""
