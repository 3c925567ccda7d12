"""The training loop: compiled once, chunked without changing the numbers, doors for weights and data, errors."""

import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnet
from fnnet import ConfigError, DivergenceError
from fnnet.data import Sizes, make_data, run_keys
from fnnet.lessons import lesson_functions

from conftest import SMALL


def _compile_messages(caplog):
    return [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]


@pytest.mark.parametrize("lesson_id", ["autograd", "optim", "control_flow"])
def test_second_fit_compiles_nothing(lesson_id, caplog):
    sizes = Sizes(8, 24, 12, 3)
    first = fnnet.fit(lesson_id, steps=30, sizes=sizes, log_every=10)
    assert first.compile_seconds > 0
    caplog.set_level(logging.WARNING)
    with jax.log_compiles():
        second = fnnet.fit(lesson_id, steps=30, sizes=sizes, log_every=10, seed=5, lr=3e-5)
    assert second.compile_seconds == 0.0
    assert _compile_messages(caplog) == []
    assert not np.array_equal(first.losses, second.losses)  # it really ran, with the new seed and lr


def test_log_compiles_sees_a_real_compile(caplog):
    """The check above can fail: a configuration not seen before does log a compile."""
    caplog.set_level(logging.WARNING)
    with jax.log_compiles():
        fnnet.fit("nn", steps=3, sizes=Sizes(3, 5, 4, 2))
    assert _compile_messages(caplog)


def test_chunking_does_not_change_the_losses():
    one = fnnet.fit("optim", steps=30, sizes=SMALL, log_every=30).losses
    many = fnnet.fit("optim", steps=30, sizes=SMALL, log_every=7).losses
    np.testing.assert_allclose(many, one, rtol=1e-6)


def test_losses_are_before_each_update():
    sizes = SMALL
    keys = run_keys(0)
    fns = lesson_functions("autograd", sizes)
    params, batch = fns.init(keys.init), make_data(sizes, key=keys.data)
    result = fnnet.fit("autograd", steps=2, sizes=sizes)
    loss0, _ = fns.grad_fn(params, batch, None)
    assert result.losses[0] == pytest.approx(float(loss0), rel=1e-6)


def test_params_door_continues_a_run():
    """Stateless SGD: 20 steps, then 20 more from those weights, equals 40 steps."""
    whole = fnnet.fit("nn", steps=40, sizes=SMALL)
    first = fnnet.fit("nn", steps=20, sizes=SMALL)
    second = fnnet.fit("nn", steps=20, sizes=SMALL, params=first.params)
    np.testing.assert_allclose(np.concatenate([first.losses, second.losses]), whole.losses, rtol=1e-6)


def test_params_door_accepts_numpy_weights_for_the_numpy_lesson():
    start = jax.tree.map(np.asarray, lesson_functions("tensors", SMALL).init(jax.random.key(9)))
    a = fnnet.fit("numpy", steps=10, sizes=SMALL, params=start)
    b = fnnet.fit("tensors", steps=10, sizes=SMALL, params=start)
    np.testing.assert_allclose(b.losses, a.losses, rtol=1e-4)


def test_data_door_trains_on_given_arrays(key):
    kx, kw = jax.random.split(key)
    x = np.asarray(jax.random.normal(kx, (30, 6)))
    w = np.asarray(jax.random.normal(kw, (6, 2)))
    y = np.tanh(x @ w)  # a learnable target
    result = fnnet.fit("optim", steps=300, data=(x, y), lr=1e-2)
    assert result.config["sizes"] == {"batch": 30, "d_in": 6, "hidden": 100, "d_out": 2}
    assert result.losses[-1] < 0.05 * result.losses[0]


def test_an_optax_transformation_can_be_given():
    ours = fnnet.fit("custom_module", steps=20, sizes=SMALL)
    theirs = fnnet.fit("custom_module", steps=20, sizes=SMALL, optimizer=optax.sgd(1e-4))
    np.testing.assert_allclose(theirs.losses, ours.losses, rtol=1e-6)


def test_divergence_stops_with_the_step_loss_and_lr():
    with pytest.raises(DivergenceError) as info:
        fnnet.fit("nn", lr=10.0, steps=200, log_every=50)
    err = info.value
    assert err.step < 50 and not math.isfinite(err.loss) and err.lr == 10.0
    assert len(err.losses) == err.step + 1 and np.isfinite(err.losses[:-1]).all()
    assert f"step {err.step}" in str(err) and "learning rate 10" in str(err)


def test_callback_sees_every_chunk():
    seen = []
    fnnet.fit("tensors", steps=25, sizes=SMALL, log_every=10, callback=lambda p: seen.append((p.step, len(p.losses))))
    assert seen == [(10, 10), (20, 10), (25, 5)]


def test_timings_are_reported():
    result = fnnet.fit("custom_function", steps=10, sizes=Sizes(4, 9, 5, 2))
    assert result.run_seconds > 0 and result.steps_per_second > 0
    assert result.config["optimizer"] == "sgd-by-hand" and result.config["lr"] == 1e-6


BAD_CALLS = [
    (("nope",), {}, "unknown lesson 'nope'"),
    (("nn",), {"steps": 0}, "steps must be a positive integer"),
    (("nn",), {"steps": -5}, "steps must be a positive integer"),
    (("nn",), {"steps": 2.5}, "steps must be a positive integer"),
    (("nn",), {"steps": True}, "steps must be a positive integer"),
    (("nn",), {"steps": 2**40}, "steps must be at most"),
    (("nn",), {"sizes": (10**6, 10**6, 100, 10)}, "need at least"),
    (("nn",), {"lr": 0.0}, "lr must be a finite positive number"),
    (("nn",), {"lr": -1e-3}, "lr must be a finite positive number"),
    (("nn",), {"lr": float("nan")}, "lr must be a finite positive number"),
    (("nn",), {"lr": float("inf")}, "lr must be a finite positive number"),
    (("nn",), {"lr": "fast"}, "lr must be a positive number"),
    (("nn",), {"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
    (("numpy",), {"optimizer": "adam"}, "takes only sgd"),
    (("nn",), {"optimizer": optax.sgd(0.1), "lr": 0.1}, "not both"),
    (("nn",), {"seed": -1}, "seed must be an integer from 0 to 2**64-1"),
    (("nn",), {"sizes": (1, 2, 3)}, "sizes must be"),
    (("nn",), {"sizes": (4, 0, 3, 2)}, "sizes.d_in must be a positive integer"),
    (("nn",), {"log_every": 0}, "log_every must be a positive integer"),
    (("nn",), {"callback": 3}, "callback must be callable"),
    (("nn",), {"data": np.ones((4, 3))}, "data must be a pair"),
    (("nn",), {"data": (np.ones((4, 3, 1)), np.ones((4, 2)))}, "x must be 2-D"),
    (("nn",), {"data": (np.ones((4, 3)), np.ones((5, 2)))}, "x has 4 rows but y has 5"),
    (("nn",), {"data": (np.full((4, 3), np.nan), np.ones((4, 2)))}, "x contains NaN"),
    (("nn",), {"data": (np.array([["a"]]), np.ones((1, 2)))}, "must hold real numbers"),
    (("nn",), {"data": (np.ones((4, 3)), np.ones((4, 2))), "sizes": (4, 5, 6, 2)}, "do not match sizes"),
    (("tensors",), {"params": {"w1": np.ones((1000, 100))}}, "params do not match lesson 'tensors'"),
    (("tensors",), {"params": {"w1": np.ones((3, 100)), "w2": np.ones((50, 10))}}, "params['w2'] has shape (50, 10)"),
    (("tensors",), {"params": {"w1": np.ones((3, 100)), "w2": np.ones((100, 10))}, "sizes": (64, 1000, 100, 10)},
     "params do not match sizes: d_in is 3 there, 1000 in sizes"),
    (("tensors",), {"params": {"w1": np.full((1000, 100), "a"), "w2": np.ones((100, 10))}}, "must be finite floats"),
    (("nn",), {"dtype": "float16"}, "dtype must be 'float32' or 'float64'"),
    (("nn",), {"dtype": "float64"}, "needs 64-bit JAX"),
]


@pytest.mark.parametrize("args,kwargs,message", BAD_CALLS, ids=[m for _, _, m in BAD_CALLS])
def test_bad_arguments_raise_one_line_config_errors(args, kwargs, message):
    with pytest.raises(ConfigError) as info:
        fnnet.fit(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_progress_bar_runs_when_asked(capfd):
    result = fnnet.fit("tensors", steps=20, sizes=SMALL, log_every=5, progress=True)
    assert len(result.losses) == 20
    assert capfd.readouterr().out == ""  # the bar goes to stderr, never stdout
