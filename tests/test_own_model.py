"""Your own model through fnnet's loop: nnx modules and fnnet.Model, losses, optimizers, schedules, early stop."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import fnnet
from fnnet import ConfigError
from fnnet.data import Sizes
from fnnet.lessons import lesson_model


class MLP(nnx.Module):
    """The guide's model (docs/guide/your-model.md): two tanh hidden layers."""

    def __init__(self, d_in, hidden, classes, *, rngs):
        self.l1 = nnx.Linear(d_in, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, classes, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.l2(jnp.tanh(self.l1(x)))))


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, labels = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return (x[:1400], labels[:1400]), (x[1400:], labels[1400:])


def _accuracy(model, x, labels):
    return float(np.mean(np.argmax(np.asarray(model(jnp.asarray(x))), axis=1) == labels))


def _plain_optax_loop(module, x, labels, steps, batch_size, seed=0):
    """What a learner writes without fnnet: optax.adamw, a jitted step, numpy shuffles each epoch."""
    graphdef, params = nnx.split(module, nnx.Param)
    tx = optax.adamw(1e-3)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss(p):
            logits = nnx.merge(graphdef, p)(xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        grads = jax.grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    rng, per_epoch = np.random.default_rng(seed), len(x) // batch_size
    for t in range(steps):
        if t % per_epoch == 0:
            order = rng.permutation(len(x))
        rows = order[(t % per_epoch) * batch_size:(t % per_epoch + 1) * batch_size]
        params, opt_state = step(params, opt_state, x[rows], labels[rows])
    return nnx.merge(graphdef, params)


def test_nnx_mlp_reaches_a_plain_optax_loops_accuracy_and_leaves_the_module_alone(digits):
    (x, labels), (x_test, labels_test) = digits
    module = MLP(64, 32, 10, rngs=nnx.Rngs(0))
    before = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(module, nnx.Param)))
    result = fnnet.fit(module, data=(x, labels), loss="cross_entropy", optimizer=optax.adamw(1e-3), steps=300,
                       batch_size=64)
    after = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(module, nnx.Param)))
    jax.tree.map(np.testing.assert_array_equal, after, before)  # the module given is left as it was

    ours = _accuracy(result.module, x_test, labels_test)
    plain = _accuracy(_plain_optax_loop(MLP(64, 32, 10, rngs=nnx.Rngs(0)), x, labels, 300, 64), x_test, labels_test)
    assert plain > 0.85  # the reference itself learned
    assert ours >= plain - 0.03, (ours, plain)
    assert result.losses[-20:].mean() < 0.25 * result.losses[0]
    assert result.config["optimizer"] == "adamw (optax)" and result.config["loss"] == "cross_entropy"
    assert isinstance(result.module, MLP)


def test_nnx_mlp_half_then_resume_equals_straight_bit_for_bit(digits, tmp_path):
    (x, labels), _ = digits
    x, labels = x[:640], labels[:640]
    kwargs = dict(data=(x, labels), loss="cross_entropy", optimizer=optax.adamw(1e-3), batch_size=64, log_every=50)
    straight = fnnet.fit(MLP(64, 16, 10, rngs=nnx.Rngs(1)), steps=300, **kwargs)
    folder = tmp_path / "run"
    half = fnnet.fit(MLP(64, 16, 10, rngs=nnx.Rngs(1)), steps=150, checkpoint_dir=folder, **kwargs)
    assert len(half.losses) == 150
    resumed = fnnet.fit(MLP(64, 16, 10, rngs=nnx.Rngs(1)), steps=300, checkpoint_dir=folder, resume=True, **kwargs)
    np.testing.assert_array_equal(resumed.losses, straight.losses)
    jax.tree.map(np.testing.assert_array_equal, resumed.params, straight.params)
    assert resumed.steps_run == 150


def test_a_model_written_as_two_functions_trains_and_a_second_fit_compiles_nothing(caplog):
    def init(key):
        return {"w": 0.1 * jax.random.normal(key, (4, 2)), "b": jnp.zeros(2)}

    def apply(params, x):
        return jnp.tanh(x) @ params["w"] + params["b"][None, :]

    model = fnnet.Model(init, apply)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4))
    y = np.tanh(x) @ rng.normal(size=(4, 2)) + 0.5
    first = fnnet.fit(model, data=(x, y), loss="mse", optimizer="adam", lr=0.05, steps=300)
    assert first.losses[-1] < 1e-3 * first.losses[0]
    assert first.config["lesson"] == "apply" and first.config["lr"] == 0.05
    caplog.set_level(logging.WARNING)
    with jax.log_compiles():
        second = fnnet.fit(model, data=(x, y), loss="mse", optimizer="adam", lr=0.02, steps=300, seed=4)
    assert second.compile_seconds == 0.0
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
    assert not np.array_equal(first.losses, second.losses)


def test_a_loss_function_equals_the_named_loss():
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(16, 20)), rng.normal(size=(16, 3)))
    named = fnnet.fit("custom_module", data=data, loss="mse", steps=20, sizes={"hidden": 8}, lr=1e-2)
    given = fnnet.fit("custom_module", data=data, loss=lambda p, y: jnp.mean((p - y) ** 2), steps=20,
                      sizes={"hidden": 8}, lr=1e-2)
    np.testing.assert_allclose(given.losses, named.losses, rtol=1e-6)
    sse = fnnet.fit("custom_module", data=data, steps=1, sizes={"hidden": 8})
    assert sse.losses[0] == pytest.approx(named.losses[0] * 16 * 3, rel=1e-5)


def test_an_optax_schedule_as_lr_equals_the_schedule_inside_optax():
    schedule = optax.linear_schedule(1e-3, 1e-5, 30)
    via_lr = fnnet.fit("custom_module", lr=schedule, optimizer="adam", steps=30, sizes=(8, 20, 10, 3))
    via_tx = fnnet.fit("custom_module", optimizer=optax.adam(schedule), steps=30, sizes=(8, 20, 10, 3))
    constant = fnnet.fit("custom_module", lr=1e-3, optimizer="adam", steps=30, sizes=(8, 20, 10, 3))
    np.testing.assert_array_equal(via_lr.losses, via_tx.losses)
    assert not np.array_equal(via_lr.losses, constant.losses)  # the schedule really changed the rate
    assert via_lr.config["optimizer"] == "adam (scheduled)" and via_tx.config["optimizer"] == "adam (optax)"


def test_an_optimizer_without_lr_takes_its_own_default_not_the_lessons():
    run = fnnet.fit("tensors", optimizer="adam", steps=100, sizes=(16, 50, 20, 4))
    assert run.config["lr"] == 1e-2 and run.config["optimizer"] == "adam"
    assert run.losses[-1] < 0.05 * run.losses[0]  # adam at the SGD rate 1e-6 would barely move (>0.99)
    assert fnnet.fit("tensors", steps=3, sizes=(16, 50, 20, 4)).config["lr"] == 1e-6  # the lesson's own


def test_stop_training_from_the_callback_returns_the_result_so_far():
    def stop_at_30(progress):
        if progress.step >= 30:
            raise fnnet.StopTraining

    result = fnnet.fit("nn", steps=100, sizes=(8, 20, 10, 3), log_every=10, callback=stop_at_30)
    assert result.stopped and len(result.losses) == 30 and result.steps_run == 30
    full = fnnet.fit("nn", steps=30, sizes=(8, 20, 10, 3), log_every=10)
    np.testing.assert_array_equal(result.losses, full.losses)


def test_another_exception_in_the_callback_propagates():
    def broken(progress):
        raise RuntimeError("my bug")

    with pytest.raises(RuntimeError, match="my bug"):
        fnnet.fit("nn", steps=20, sizes=(8, 20, 10, 3), log_every=10, callback=broken)


def test_sizes_follow_the_weights_and_data_given():
    """The issue's case: weights with hidden 37 and data, no sizes."""
    params = jax.tree.map(np.asarray, lesson_model("nn", Sizes(12, 6, 37, 2)).init(jax.random.key(0)))
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(12, 6)), rng.normal(size=(12, 2)))
    result = fnnet.fit("nn", params=params, data=data, steps=5)
    assert result.config["sizes"] == {"batch": 12, "d_in": 6, "hidden": 37, "d_out": 2}
    with pytest.raises(ConfigError, match="do not match sizes: hidden is 37 there, 40 in sizes"):
        fnnet.fit("nn", params=params, data=data, steps=5, sizes={"hidden": 40})


def test_sweep_takes_your_model_and_equals_fit():
    def init(key):
        return {"w": jax.random.normal(key, (3, 1))}

    model = fnnet.Model(init, lambda p, x: x @ p["w"])
    rng = np.random.default_rng(2)
    x = rng.normal(size=(24, 3))
    data = (x, x @ np.array([[1.0], [2.0], [-1.0]]))
    swept = fnnet.sweep.sweep(model, lrs=[1e-2, 3e-2], seeds=2, steps=40, data=data, loss="mse", optimizer="sgd",
                              batch_size=8)
    one = fnnet.fit(model, lr=3e-2, seed=1, steps=40, data=data, loss="mse", optimizer="sgd", batch_size=8)
    np.testing.assert_allclose(swept.losses[1, 1], one.losses, rtol=1e-5)


def test_submodules_are_reachable_from_the_package():
    import fnnet as f

    assert callable(f.sweep.sweep) and callable(f.checkpoint.Checkpoints) and callable(f.compare.torch_named)


BAD = [
    ((fnnet.Model(lambda k: {"w": jnp.ones(2)}, lambda p, x: x),), {}, "your own model needs data"),
    ((object(),), {}, "model must be a lesson id"),
    (("nn",), {"loss": "hinge"}, "unknown loss 'hinge'"),
    (("tensors",), {"loss": "mse"}, "its loss is 'sse'"),
    (("nn",), {"optimizer": "adamw"}, "unknown optimizer 'adamw' (did you mean 'adam'?)"),
    (("numpy",), {"lr": optax.linear_schedule(1e-3, 0, 10)}, "takes a fixed learning rate"),
    (("tensors",), {"lr": optax.linear_schedule(1e-3, 0, 10)}, "needs an optax optimizer"),
    (("nn",), {"sizes": {"width": 3}}, "unknown field 'width'"),
    (("optm",), {}, "did you mean 'optim'?"),
    (("nn",), {"data": (np.ones((4, 3)), np.arange(4.0)), "loss": "cross_entropy"}, "labels y must be integers"),
]

_X = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
_W = lambda key: {"w": jnp.ones((3, 1))}  # noqa: E731
_LOGITS = lambda p, x: x @ jnp.ones((3, 4)) * p["w"][0, 0]  # noqa: E731  (8, 4) logits

# each of these trained silently or raised a raw JAX/optax traceback before the check on one batch
BAD += [
    ((fnnet.Model(_W, lambda p, x: (x @ p["w"])[:, 0]),), {"data": (_X, np.ones((8, 1)))},
     "returns shape (8,) but y is (8, 1): 'sse' compares them element by element and would broadcast them to (8, 8)"),
    ((fnnet.Model(_W, lambda p, x: x @ p["w"]),), {"data": (_X, np.ones((8, 2))), "loss": "mse"},
     "returns shape (8, 1) but y is (8, 2): 'mse'"),
    ((fnnet.Model(_W, lambda p, x: x @ jnp.ones((3, 3))),), {"data": (_X, np.ones((8, 2)))},
     "returns shape (8, 3) but y is (8, 2)"),
    ((fnnet.Model(_W, lambda p, x: (x @ p["w"], x)),), {"data": (_X, np.ones((8, 1)))},
     "returns a tuple of 2; expected one array"),
    ((fnnet.Model(_W, lambda p, x: x @ p["w"]),), {"data": (np.ones((8, 4)), np.ones((8, 1)))},
     "failed on a batch x(8, 4): TypeError: dot_general"),
    ((fnnet.Model(_W, lambda p, x: x @ p["w"]),), {"data": (_X, np.ones((8, 1))), "loss": lambda a, b: (a - b) ** 2},
     "returns (8, 1); expected a scalar"),
    ((fnnet.Model(_W, lambda p, x: x @ p["w"]),),
     {"data": (_X, np.ones((8, 1))), "loss": lambda a, b: jnp.sum(a > b).astype(jnp.int32)}, "returns a int32 scalar"),
    ((fnnet.Model(_W, lambda p, x: x @ p["w"]),), {"data": (_X, np.ones((8, 1))), "loss": lambda a, b: a.nope},
     "failed on y_pred (8, 1) and y (8, 1): AttributeError"),
    ((fnnet.Model(_W, _LOGITS),), {"data": (_X, np.ones((8, 1), int)), "loss": "cross_entropy"},
     "'cross_entropy' takes integer class labels y of shape (rows,), got shape (8, 1)"),
    ((fnnet.Model(_W, _LOGITS),), {"data": (_X, np.arange(8)), "loss": "cross_entropy"},
     "labels y go up to 7 but <lambda> returns 4 classes"),
    (("nn",), {"sizes": {"d_out": 4, "hidden": 5}, "data": (_X, np.arange(8)), "loss": "cross_entropy"},
     "labels y go up to 7 but lesson 'nn' returns 4 classes"),
    ((fnnet.Model(1, 2),), {"data": (_X, np.ones((8, 1)))}, "init is not callable, got int"),
    ((fnnet.Model(lambda key: {"w": 3}, lambda p, x: x * p["w"]),), {"data": (_X, np.ones((8, 1)))},
     "your model's init returned params['w'] must be finite floats, got dtype int32"),
    ((fnnet.Model(_W, lambda p, x: x @ p["w"]),),
     {"data": (_X, np.ones((8, 1))), "optimizer": "sgd", "lr": optax.linear_schedule(1e-3, -1e-3, 10)},
     "the learning-rate schedule gives -0.0002 at step 6"),
    ((fnnet.Model(_W, lambda p, x: x @ p["w"]),),  # the schedule read inside the optax transformation
     {"data": (_X, np.ones((8, 1))), "optimizer": optax.sgd(optax.linear_schedule(1e-3, -1e-3, 10))},
     "the learning-rate schedule gives -0.0002 at step 6"),
]


@pytest.mark.parametrize("args,kwargs,message", BAD, ids=[m for _, _, m in BAD])
def test_bad_own_model_arguments_are_one_line_errors(args, kwargs, message):
    with pytest.raises(ConfigError) as info:
        fnnet.fit(*args, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_apply_with_its_own_keyword_default_is_not_handed_the_key():
    model = fnnet.Model(_W, lambda p, x, scale=2.0: scale * (x @ p["w"]))
    ours = fnnet.fit(model, data=(_X, np.ones((8, 1))), steps=3, progress=False, optimizer="sgd", lr=0.01)
    plain = fnnet.fit(fnnet.Model(_W, lambda p, x: 2.0 * (x @ p["w"])), data=(_X, np.ones((8, 1))), steps=3,
                      progress=False, optimizer="sgd", lr=0.01)
    np.testing.assert_array_equal(ours.losses, plain.losses)


def test_a_loss_of_your_own_takes_labels_of_shape_rows():
    hinge = lambda out, labels: jnp.mean(jnp.maximum(0.0, 1.0 - out * (2.0 * labels - 1.0)))  # noqa: E731
    labels = (np.arange(8) % 2).astype(np.int64)
    result = fnnet.fit(fnnet.Model(_W, lambda p, x: (x @ p["w"])[:, 0]), data=(_X, labels), loss=hinge, steps=20,
                       progress=False, optimizer="sgd", lr=0.1)
    assert result.losses[-1] < result.losses[0]


def test_bfloat16_data_trains_like_float16():
    y = np.ones((8, 1), np.float32)
    model = fnnet.Model(_W, lambda p, x: x @ p["w"])
    wide = fnnet.fit(model, data=(_X.astype(jnp.bfloat16), y), steps=5, progress=False)
    assert np.isfinite(wide.losses).all()


def _resume_after(tmp_path, first: dict, then: dict, steps=(4, 8)):
    """Train ``steps[0]`` steps with ``first``, then resume to ``steps[1]`` with ``then`` (the same model and data)."""
    common = dict(data=(_X, np.ones((8, 1), np.float32)), progress=False, checkpoint_dir=tmp_path / "run")
    model = fnnet.Model(_W, lambda p, x: x @ p["w"])
    fnnet.fit(model, steps=steps[0], **common, **first)
    return fnnet.fit(model, steps=steps[1], resume=True, **common, **then)


@pytest.mark.parametrize("first, then, says", [
    ({"optimizer": optax.adam(1e-3)}, {"optimizer": optax.adam(1e-1)}, "lr: checkpoint 0.001, now 0.1"),
    ({"optimizer": optax.adam(1e-3)}, {"optimizer": optax.adam(1e-3, b1=0.5)}, "the optimizer's hyperparameters"),
    ({"optimizer": "sgd", "lr": optax.constant_schedule(1e-3)}, {"optimizer": "sgd", "lr": optax.constant_schedule(1.0)},
     "the optimizer's hyperparameters or rate differs"),
    ({"loss": lambda p, y: jnp.sum((p - y) ** 2)}, {"loss": lambda p, y: jnp.sum(jnp.abs(p - y))},
     "the loss function's code differs"),
])
def test_resuming_with_another_optimizer_schedule_or_loss_is_refused(tmp_path, first, then, says):
    with pytest.raises(ConfigError) as info:
        _resume_after(tmp_path, first, then)
    assert "belong to another run" in str(info.value) and says in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_the_same_optimizer_and_loss_made_anew_resume(tmp_path):
    resumed = _resume_after(tmp_path, {"optimizer": optax.adam(1e-3), "loss": lambda p, y: jnp.sum((p - y) ** 2)},
                            {"optimizer": optax.adam(1e-3), "loss": lambda p, y: jnp.sum((p - y) ** 2)})
    assert resumed.steps_run == 4
    assert resumed.config["lr"] == 0.001 and resumed.config["fingerprint"]["loss"].startswith("sha256:")


def test_the_record_says_the_rate_of_a_schedule_never_null():
    run = fnnet.fit(fnnet.Model(_W, lambda p, x: x @ p["w"]), data=(_X, np.ones((8, 1))), steps=3, progress=False,
                    optimizer="sgd", lr=optax.linear_schedule(0.1, 0.0, 100))
    assert run.config["lr"] == 0.1 and run.config["schedule"]["10"] == pytest.approx(0.09)


def test_a_checkpoint_from_before_fingerprints_resumes_with_one_line(tmp_path, monkeypatch):
    from fnnet.runtime.restore import CheckpointWarning
    from fnnet.training.config import RunConfig

    record = RunConfig.record

    def old_record(self):  # what fnnet wrote before it recorded what trained
        doc = record(self)
        doc.pop("fingerprint"), doc.pop("schedule", None)
        return {**doc, "lr": None}

    monkeypatch.setattr(RunConfig, "record", old_record)
    common = dict(data=(_X, np.ones((8, 1), np.float32)), progress=False, checkpoint_dir=tmp_path / "run",
                  optimizer=optax.adam(1e-3))
    model = fnnet.Model(_W, lambda p, x: x @ p["w"])
    fnnet.fit(model, steps=4, **common)
    monkeypatch.setattr(RunConfig, "record", record)
    with pytest.warns(CheckpointWarning, match="written before fnnet recorded what trained") as caught:
        resumed = fnnet.fit(model, steps=8, resume=True, **common)
    assert resumed.steps_run == 4 and len(caught) == 1


class _SquaredError:
    """A loss as a callable object: it has no code object of its own, so its fingerprint cannot be read."""

    def __call__(self, y_pred, y):
        return jnp.sum((y_pred - y) ** 2)


def test_a_loss_that_cannot_be_fingerprinted_resumes_with_one_line(tmp_path):
    from fnnet.runtime.restore import CheckpointWarning

    common = dict(data=(_X, np.ones((8, 1), np.float32)), progress=False, checkpoint_dir=tmp_path / "run",
                  loss=_SquaredError())
    model = fnnet.Model(_W, lambda p, x: x @ p["w"])
    first = fnnet.fit(model, steps=4, **common)
    assert first.config["fingerprint"]["loss"].startswith("unreadable")
    with pytest.warns(CheckpointWarning, match="could not compare the loss function's code") as caught:
        resumed = fnnet.fit(model, steps=8, resume=True, **common)
    assert resumed.steps_run == 4 and len(caught) == 1
