"""The pure pieces: the hand-written backward and MyReLU against JAX's own derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from fnnet.data import Sizes
from fnnet.lessons.functional import init_weights, manual_grads, my_relu, relu, sum_squared_error, two_layer


def _loss(params, x, y, activation=relu):
    return sum_squared_error(two_layer(params, x, activation), y)


@pytest.mark.parametrize("sizes", [Sizes(1, 1, 1, 1), Sizes(4, 10, 6, 3), Sizes(64, 1000, 100, 10), Sizes(7, 3, 13, 5)])
def test_manual_grads_equals_jax_grad(sizes):
    # drawn with NumPy: jax.random would compile its threefry kernels anew for every shape
    rng = np.random.default_rng(sum(sizes))
    x, y = (jnp.asarray(rng.standard_normal(shape), jnp.float32)
            for shape in ((sizes.batch, sizes.d_in), (sizes.batch, sizes.d_out)))
    params = {"w1": jnp.asarray(rng.standard_normal((sizes.d_in, sizes.hidden)), jnp.float32),
              "w2": jnp.asarray(rng.standard_normal((sizes.hidden, sizes.d_out)), jnp.float32)}
    loss, grads = jax.jit(manual_grads)(params, x, y)
    ref_loss, ref_grads = jax.jit(jax.value_and_grad(_loss))(params, x, y)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    for name in ("w1", "w2"):
        scale = np.abs(ref_grads[name]).max()
        np.testing.assert_allclose(grads[name], ref_grads[name], rtol=1e-5, atol=1e-6 * scale)


def test_manual_grads_runs_in_numpy_float64(key):
    """The numpy lesson's backward is the same function, computing in NumPy."""
    sizes = Sizes(5, 8, 6, 2)
    kx, ky, kw = jax.random.split(key, 3)
    x = np.asarray(jax.random.normal(kx, (5, 8)), np.float64)
    y = np.asarray(jax.random.normal(ky, (5, 2)), np.float64)
    params = {k: np.asarray(v, np.float64) for k, v in init_weights(sizes, key=kw).items()}
    loss, grads = manual_grads(params, x, y)
    assert isinstance(grads["w1"], np.ndarray) and grads["w1"].dtype == np.float64
    # finite differences in float64 on one entry of each weight
    eps = 1e-6
    for name, idx in (("w1", (3, 2)), ("w2", (1, 1))):
        bumped = {k: v.copy() for k, v in params.items()}
        bumped[name][idx] += eps
        numeric = (manual_grads(bumped, x, y)[0] - loss) / eps
        np.testing.assert_allclose(grads[name][idx], numeric, rtol=1e-4)


def test_my_relu_value_equals_relu(key):
    x = jax.random.normal(key, (100,))
    np.testing.assert_array_equal(my_relu(x), relu(x))
    np.testing.assert_array_equal(relu(x), np.maximum(np.asarray(x), 0))


def test_my_relu_passes_check_grads_float64(key):
    with jax.enable_x64(True):
        x = jax.random.normal(key, (50,), dtype=jnp.float64)
        x = jnp.where(jnp.abs(x) < 0.1, x + 0.5 * jnp.sign(x) + 0.2, x)  # keep points away from the kink
        assert x.dtype == jnp.float64 and float(jnp.abs(x).min()) > 0.05
        check_grads(my_relu, (x,), order=2, modes=["rev"])
        check_grads(lambda x: jnp.sum(my_relu(x) ** 2), (x,), order=1, modes=["rev"])


def test_my_relu_backward_follows_the_seed_rule():
    """Gradient zeroed where input < 0, passed unchanged at exactly 0 and above."""
    x = jnp.array([-3.0, -1e-30, 0.0, 1e-30, 2.0])
    g = jnp.array([10.0, 20.0, 30.0, 40.0, 50.0])
    _, vjp = jax.vjp(my_relu, x)
    np.testing.assert_array_equal(vjp(g)[0], [0.0, 0.0, 30.0, 40.0, 50.0])
    # jax.nn.relu differs at exactly 0: that is why fnnet does not use it
    assert float(jax.grad(jax.nn.relu)(0.0)) == 0.0
    assert float(jax.grad(my_relu)(0.0)) == 1.0
    assert float(jax.grad(relu)(0.0)) == 1.0


def test_my_relu_saves_its_input_as_the_residual():
    x = jnp.array([-1.0, 0.0, 2.0])
    out, residual = my_relu.fwd(x)
    np.testing.assert_array_equal(out, [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(residual, x)


def test_custom_function_gradient_equals_autograd(key):
    sizes = Sizes(6, 9, 5, 2)
    kx, ky, kw = jax.random.split(key, 3)
    x, y = jax.random.normal(kx, (6, 9)), jax.random.normal(ky, (6, 2))
    params = init_weights(sizes, key=kw)
    a = jax.grad(_loss)(params, x, y)
    b = jax.grad(_loss)(params, x, y, my_relu)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6)


def test_sum_squared_error_is_a_sum_not_a_mean():
    y_pred = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    assert float(sum_squared_error(y_pred, jnp.zeros((2, 2)))) == 30.0
