"""Property tests of the functional core over random values (hypothesis), at a few fixed shapes.

The shapes are drawn from a fixed list (edge sizes of 1, and uneven ones) rather than from a range, so
each example reuses the programs compiled for its shape instead of compiling new ones; the values,
which is what the properties are about, are drawn freely."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st

from fnnet.data import Sizes
from fnnet.lessons.functional import init_weights, manual_grads, my_relu, relu, sum_squared_error, two_layer

SHAPES = [Sizes(1, 1, 1, 1), Sizes(2, 3, 4, 5), Sizes(5, 24, 7, 3), Sizes(16, 9, 24, 1)]
LENGTHS = [1, 7, 50]  # of the 1-D inputs of the ReLU properties
SETTINGS = settings(max_examples=25, deadline=None)


def float_lists(elements):
    return st.sampled_from(LENGTHS).flatmap(lambda n: st.lists(elements, min_size=n, max_size=n))


@st.composite
def problems(draw):
    sizes = draw(st.sampled_from(SHAPES))
    seed = draw(st.integers(0, 2**31 - 1))
    # x and y from NumPy's generator: jax.random would compile its threefry kernels for every shape
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((sizes.batch, sizes.d_in)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((sizes.batch, sizes.d_out)), jnp.float32)
    return sizes, init_weights(sizes, key=jax.random.key(seed)), x, y


@SETTINGS
@given(problems())
def test_two_layer_keeps_shapes_and_dtypes(problem):
    sizes, params, x, y = problem
    out = two_layer(params, x)
    assert out.shape == (sizes.batch, sizes.d_out) and out.dtype == jnp.float32
    assert sum_squared_error(out, y).shape == ()
    loss, grads = manual_grads(params, x, y)
    assert jax.tree.map(jnp.shape, grads) == jax.tree.map(jnp.shape, params)
    assert all(g.dtype == jnp.float32 for g in grads.values())


@SETTINGS
@given(problems())
def test_manual_grads_equals_jax_grad(problem):
    _, params, x, y = problem
    loss, grads = manual_grads(params, x, y)
    ref_loss, ref = jax.value_and_grad(lambda p: sum_squared_error(two_layer(p, x), y))(params)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    for name in grads:
        scale = float(jnp.abs(ref[name]).max()) + 1e-30
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-5, atol=1e-5 * scale)


# XLA:CPU treats float32 subnormals as zero (denormals-are-zero), NumPy does not; compare with NumPy on the
# rest. my_relu against relu holds for every float, subnormals included.
normal_floats = st.floats(-1e6, 1e6, width=32).filter(lambda v: v == 0 or abs(v) >= np.finfo(np.float32).tiny)


@SETTINGS
@given(float_lists(st.floats(-1e6, 1e6, width=32)))
def test_my_relu_equals_relu_for_every_float(values):
    x = jnp.asarray(values, jnp.float32)
    np.testing.assert_array_equal(my_relu(x), relu(x))


@SETTINGS
@given(float_lists(st.one_of(normal_floats, st.just(0.0), st.just(-0.0))))
def test_my_relu_is_relu_and_keeps_dtype(values):
    x = jnp.asarray(values, jnp.float32)
    np.testing.assert_array_equal(my_relu(x), relu(x))
    np.testing.assert_array_equal(relu(x), np.where(np.asarray(x) < 0, 0, np.asarray(x)))
    assert my_relu(x).dtype == x.dtype and my_relu(x).shape == x.shape
    g = jax.grad(lambda v: jnp.sum(my_relu(v) * jnp.arange(v.size, dtype=v.dtype)))(x)
    np.testing.assert_array_equal(g, np.where(np.asarray(x) < 0, 0, np.arange(x.size)))
