"""The eight lessons at the seed's defaults: they converge, and lessons that share a model share a start."""

import jax
import numpy as np
import pytest

import fnnet
from fnnet.data import Sizes, run_keys
from fnnet.lessons import LESSONS, lesson_functions

from conftest import SMALL

SEED_SPEC = {  # from the seed: (optimizer, lr) of each step of the tutorial
    "numpy": ("sgd-by-hand", 1e-6),
    "tensors": ("sgd-by-hand", 1e-6),
    "autograd": ("sgd-by-hand", 1e-6),
    "custom_function": ("sgd-by-hand", 1e-6),
    "nn": ("sgd-by-hand", 1e-4),
    "optim": ("adam", 1e-4),
    "custom_module": ("sgd", 1e-4),
    "control_flow": ("momentum", 1e-4),
}


@pytest.fixture(scope="module")
def seed_runs():
    """Every lesson once, at the seed's defaults (64/1000/100/10, 500 steps, seed 0)."""
    return {lesson_id: fnnet.fit(lesson_id) for lesson_id in SEED_SPEC}


def test_lessons_are_the_tutorial_steps_in_order():
    assert list(LESSONS)[:8] == list(SEED_SPEC)  # the classic edition first; the sine edition: test_sine.py
    for lesson_id, (optimizer, lr) in SEED_SPEC.items():
        assert (LESSONS[lesson_id].optimizer, LESSONS[lesson_id].lr) == (optimizer, lr)


def test_first_lessons_differ_in_one_idea():
    """numpy -> tensors -> autograd -> custom_function: where it runs, how the gradient is made, the ReLU."""
    fields = ("model", "gradient", "backend", "optimizer", "lr")
    steps = [("numpy", "tensors", "backend"), ("tensors", "autograd", "gradient"),
             ("autograd", "custom_function", "model"), ("nn", "optim", "optimizer")]
    for before, after, field in steps:
        changed = [f for f in fields if getattr(LESSONS[before], f) != getattr(LESSONS[after], f)]
        assert changed == [field], (before, after, changed)


@pytest.mark.parametrize("lesson_id", list(SEED_SPEC))
def test_every_lesson_converges_at_its_seed_defaults(seed_runs, lesson_id):
    losses = seed_runs[lesson_id].losses
    assert losses.shape == (500,)
    assert np.isfinite(losses).all()
    assert losses[-50:].min() < 0.01 * losses[0]


def test_seed_loss_scales(seed_runs):
    """Random-normal weights start near the seed's 3e7; torch-style init near its ~600-700."""
    for lesson_id in ("numpy", "tensors", "autograd", "custom_function"):
        assert 1e7 < seed_runs[lesson_id].losses[0] < 1e8
    for lesson_id in ("nn", "optim", "custom_module", "control_flow"):
        assert 300 < seed_runs[lesson_id].losses[0] < 1500


@pytest.mark.parametrize("group", [("tensors", "autograd", "custom_function"), ("nn", "custom_module")])
def test_lessons_of_one_model_agree_to_float_rounding(seed_runs, group):
    first = seed_runs[group[0]]
    for other in group[1:]:
        np.testing.assert_allclose(seed_runs[other].losses, first.losses, rtol=1e-6, atol=0)


def test_nn_and_optim_share_their_start(seed_runs):
    assert seed_runs["nn"].losses[0] == seed_runs["optim"].losses[0]
    assert not np.array_equal(seed_runs["nn"].losses[1:], seed_runs["optim"].losses[1:])


def test_jax_lessons_follow_the_numpy_reference(seed_runs):
    """float32 JAX against float64 NumPy from the same start, while the loss is above float32's floor."""
    reference = seed_runs["numpy"].losses
    assert reference.dtype == np.float64
    above = reference > 1e-6 * reference[0]
    assert above.sum() > 100
    for lesson_id in ("tensors", "autograd", "custom_function"):
        got = seed_runs[lesson_id].losses
        np.testing.assert_allclose(got[above], reference[above], rtol=1e-4)


def test_numpy_lesson_computes_in_numpy_float64():
    result = fnnet.fit("numpy", steps=5, sizes=SMALL)
    assert all(isinstance(p, np.ndarray) and p.dtype == np.float64 for p in result.params.values())


def test_same_seed_same_losses_other_seed_different():
    for lesson_id in ("tensors", "control_flow"):
        a = fnnet.fit(lesson_id, steps=40, sizes=SMALL, seed=3).losses
        b = fnnet.fit(lesson_id, steps=40, sizes=SMALL, seed=3).losses
        c = fnnet.fit(lesson_id, steps=40, sizes=SMALL, seed=4).losses
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)


def test_nn_family_initialises_like_torch_linear():
    params = lesson_functions("custom_module", Sizes()).init(run_keys(0).init)
    for layer, fan_in in (("linear1", 1000), ("linear2", 100)):
        bound = 1 / np.sqrt(fan_in)
        for name in ("kernel", "bias"):
            values = np.asarray(params[layer][name])
            assert np.abs(values).max() <= bound
            assert np.abs(values).max() > 0.95 * bound  # uniform over the whole interval, not a narrower one
            assert abs(values.std() - bound / np.sqrt(3)) < 0.1 * bound  # std of U(-b, b)


@pytest.mark.parametrize("lesson_id,count", [
    # the tutorial's parameter counts at 64/1000/100/10, as torch's sum(p.numel()) gives them
    ("numpy", 1000 * 100 + 100 * 10),
    ("autograd", 1000 * 100 + 100 * 10),
    ("nn", 1000 * 100 + 100 + 100 * 10 + 10),
    ("custom_module", 1000 * 100 + 100 + 100 * 10 + 10),
    ("control_flow", 1000 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10),
])
def test_parameter_counts_match_the_tutorial(lesson_id, count):
    params = lesson_functions(lesson_id, Sizes()).init(run_keys(0).init)
    assert sum(np.size(p) for p in jax.tree.leaves(params)) == count


# One model per kind of draw (a default-options compile of each costs about half a second): the classic
# weights (normal), DynamicNet's nnx layers (torch's uniform init, as every nnx lesson model draws it), the
# sine scalars (normal), the sine DynamicNet's five. Optimization level 0 changes the first two by an ulp.
DRAWN = ["numpy", "control_flow", "sine_numpy", "sine_control_flow"]


@pytest.mark.slow
def test_the_fast_compiled_draws_are_the_default_compiled_draws_bit_for_bit():
    """``FAST_COMPILE`` (fnnet.data) only shortens compiling: the models' inits come out exactly as with XLA's
    default options (optimization level 0 would change some). The tutorial's data are normal draws as the
    classic weights are; the depth schedules are integer draws, with no rounding to change."""
    from fnnet.data import FAST_COMPILE
    from fnnet.lessons.models import init_params, lesson_model

    models = {lesson_id: lesson_model(lesson_id, SMALL) for lesson_id in DRAWN}

    def every_init(key):  # one program: one compile for each set of options
        return {lesson_id: init_params.__wrapped__(model, key) for lesson_id, model in models.items()}

    fast, default = (jax.jit(every_init, compiler_options=options)(jax.random.key(7))
                     for options in (FAST_COMPILE, {}))
    assert sorted(fast) == sorted(default) == sorted(DRAWN)
    for name in DRAWN:
        got, want = jax.tree.leaves(fast[name]), jax.tree.leaves(default[name])
        assert len(got) == len(want) > 0
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b)), name
