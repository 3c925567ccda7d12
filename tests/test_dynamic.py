"""DynamicNet: a depth drawn per step inside the compiled loop, and one shared middle layer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import fnnet
from fnnet.data import make_data, run_keys
from fnnet.lessons.functional import relu, sum_squared_error
from fnnet.lessons import lesson_functions
from fnnet.lessons.modules import DynamicNet, draw_depth
from fnnet.training.core import step_key, step_keys

from conftest import SMALL


def _unrolled(params, middles, x):
    """DynamicNet written out with a separate copy of the middle layer for each use."""
    h = relu(x @ params["input_linear"]["kernel"] + params["input_linear"]["bias"][None, :])
    for m in middles:
        h = relu(h @ m["kernel"] + m["bias"][None, :])
    return h @ params["output_linear"]["kernel"] + params["output_linear"]["bias"][None, :]


@pytest.fixture
def setup(key):
    kd, ki = jax.random.split(key)
    fns = lesson_functions("control_flow", SMALL)
    return fns, fns.init(ki), make_data(SMALL, key=kd)


def test_depth_varies_across_steps():
    depths = jax.vmap(draw_depth)(step_keys(run_keys(0).train, 40))
    assert set(np.asarray(depths).tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_shared_layer_gradient_is_the_sum_over_its_uses(setup, depth):
    fns, params, (x, y) = setup
    # a key whose drawn depth is `depth`, so the jitted switch path is the one under test
    key = next(k for k in jax.random.split(jax.random.key(7), 64) if int(draw_depth(k)) == depth)
    grads = jax.jit(fns.grad_fn)(params, (x, y), key)[1]

    copies = [params["middle_linear"]] * depth
    per_use = jax.grad(lambda ms: sum_squared_error(_unrolled(params, ms, x), y))(copies)
    expected = jax.tree.map(lambda *g: sum(g), *per_use) if depth else jax.tree.map(jnp.zeros_like, params["middle_linear"])
    for name in ("kernel", "bias"):
        got, want = grads["middle_linear"][name], expected[name]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * float(jnp.abs(want).max() + 1))
    if depth >= 2:  # the uses contribute different amounts: the sum is not k times one of them
        assert not np.allclose(per_use[0]["kernel"], per_use[1]["kernel"])


def test_shared_layer_is_updated_once_per_step(setup):
    """The learner's question: reused twice, updated once, with the summed gradient."""
    fns, params, (x, y) = setup
    lr = 1e-3
    result = fnnet.fit("control_flow", steps=1, optimizer="sgd", lr=lr, params=params, data=(x, y), sizes=SMALL)
    depth = int(draw_depth(step_key(run_keys(0).train, 0)))
    grads = jax.grad(lambda p: sum_squared_error(_unrolled(p, [p["middle_linear"]] * depth, x), y))(params)
    expected = params["middle_linear"]["kernel"] - lr * grads["middle_linear"]["kernel"]
    np.testing.assert_allclose(result.params["middle_linear"]["kernel"], expected, rtol=1e-5, atol=1e-7)


def test_compiled_loop_uses_the_per_step_depth_schedule(setup):
    """Replay five steps of momentum SGD by hand with the depths the schedule gives."""
    fns, params, (x, y) = setup
    result = fnnet.fit("control_flow", steps=5, params=params, data=(x, y), sizes=SMALL, seed=2)
    net_loss = lambda p, d: sum_squared_error(_unrolled(p, [p["middle_linear"]] * d, x), y)
    opt = optax.sgd(1e-4, momentum=0.9)
    state, p, losses = opt.init(params), params, []
    for t in range(5):
        depth = int(draw_depth(step_key(run_keys(2).train, t)))
        loss, g = jax.value_and_grad(net_loss)(p, depth)
        losses.append(float(loss))
        updates, state = opt.update(g, state, p)
        p = optax.apply_updates(p, updates)
    np.testing.assert_allclose(result.losses, losses, rtol=1e-5)


def test_switch_forward_equals_fixed_depth_forward():
    net = DynamicNet(SMALL, rngs=nnx.Rngs(0))
    x = jnp.ones((SMALL.batch, SMALL.d_in))
    for k in jax.random.split(jax.random.key(3), 8):
        np.testing.assert_allclose(net(x, key=k), net.at_depth(x, int(draw_depth(k))), rtol=1e-6)
