"""Training on the user's own data: .npz files, minibatches reshuffled each epoch inside the compiled loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnnet
from fnnet import ConfigError
from fnnet.training.core import minibatch


def _learnable(rows=600, d_in=8, d_out=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, d_in))
    return x, np.tanh(x @ rng.standard_normal((d_in, d_out)))


def test_each_epoch_sees_every_row_once_in_a_new_order():
    rows, size = 12, 4
    x = jnp.arange(rows, dtype=jnp.float32)[:, None]
    key = jax.random.key(3)
    epochs = [[minibatch((x, x), key, e * 3 + i, size)[0][:, 0].tolist() for i in range(3)] for e in range(3)]
    for epoch in epochs:
        assert sorted(sum(epoch, [])) == list(range(rows))
    assert epochs[0] != epochs[1] != epochs[2]
    again = [minibatch((x, x), key, i, size)[0][:, 0].tolist() for i in range(3)]
    assert again == epochs[0]  # deterministic from the key


def test_the_compiled_loop_takes_the_rows_minibatch_describes():
    """run_chunk sorts once per epoch; its losses equal a loop that calls minibatch() every step."""
    x, y = _learnable(rows=40)
    result = fnnet.fit("autograd", data=(x, y), batch_size=8, steps=23, log_every=23)
    fns = fnnet.lessons.lesson_functions("autograd", fnnet.Sizes(40, 8, 100, 2))
    params = fns.init(fnnet.data.run_keys(0).init)
    key = fnnet.data.run_keys(0).train
    data = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    losses = []
    for t in range(23):
        loss, grads = fns.grad_fn(params, minibatch(data, key, t, 8), None)
        params = jax.tree.map(lambda p, g: p - 1e-6 * g, params, grads)
        losses.append(float(loss))
    np.testing.assert_allclose(result.losses, losses, rtol=1e-5)


def test_minibatch_training_converges_and_uses_minibatches():
    x, y = _learnable()
    result = fnnet.fit("optim", data=(x, y), lr=3e-3, steps=1500, batch_size=50)
    assert result.losses[-50:].mean() < 0.02 * result.losses[:10].mean()
    assert result.config["batch_size"] == 50 and result.config["sizes"]["batch"] == 600
    # the first loss is the loss on the first minibatch of the epoch-0 shuffle, not on all rows
    order = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(fnnet.data.run_keys(0).train, 2**31 - 1), 0), 600)
    assert result.config["data"].startswith("sha256:")
    first_rows = np.asarray(order[:50])
    full = fnnet.fit("optim", data=(x, y), steps=1).losses[0]
    part = fnnet.fit("optim", data=(x[first_rows], y[first_rows]), steps=1).losses[0]
    np.testing.assert_allclose(result.losses[0], part, rtol=1e-5)
    assert not np.isclose(result.losses[0], full)


def test_minibatch_run_resumes_bit_for_bit(tmp_path):
    x, y = _learnable(rows=120)
    whole = fnnet.fit("control_flow", data=(x, y), steps=90, batch_size=16, log_every=30)
    fnnet.fit("control_flow", data=(x, y), steps=60, batch_size=16, log_every=30, checkpoint_dir=tmp_path)
    resumed = fnnet.fit("control_flow", data=(x, y), steps=90, batch_size=16, log_every=30,
                        checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.losses, whole.losses)


@pytest.mark.parametrize("kwargs,message", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(batch_size=601), "larger than the data"),
])
def test_bad_batch_sizes(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        fnnet.fit("optim", data=_learnable(), steps=2, **kwargs)


def test_numpy_lesson_refuses_minibatches():
    with pytest.raises(ConfigError, match="whole data every step"):
        fnnet.fit("numpy", data=_learnable(), steps=2, batch_size=10)


def test_train_on_an_npz_file(tmp_path, fnnet_cli):
    x, y = _learnable()
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    code, _, err = fnnet_cli("train", "optim", "--data", str(path), "--batch", "50", "--lr", "3e-3", "--steps", "800",
                             "--quiet", "--metrics", str(tmp_path / "m.json"))
    assert code == 0, err
    import json

    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["config"]["sizes"] == {"batch": 600, "d_in": 8, "hidden": 100, "d_out": 2}
    assert doc["config"]["batch_size"] == 50 and doc["losses"][-1] < 0.1 * doc["losses"][0]


def test_bad_data_files_are_user_errors(tmp_path, fnnet_cli):
    x, y = _learnable(rows=20)
    files = {
        "no-y.npz": dict(x=x),
        "rank.npz": dict(x=x[:, :, None], y=y),
        "rows.npz": dict(x=x, y=y[:10]),
        "nan.npz": dict(x=np.where(np.eye(20, 8) > 0, np.nan, x), y=y),
        "text.npz": dict(x=np.array([["a"] * 8] * 20), y=y),
    }
    for name, arrays in files.items():
        np.savez(tmp_path / name, **arrays)
    (tmp_path / "junk.npz").write_text("not a zip")
    np.savez(tmp_path / "ok.npz", x=x, y=y)
    cases = {
        "no-y.npz": "has no array 'y'", "rank.npz": "must be 2-D", "rows.npz": "x has 20 rows but y has 10",
        "nan.npz": "contains NaN", "text.npz": "must hold real numbers", "junk.npz": "not a .npz file",
        "missing.npz": "no such file", "d.csv": "expected a .npz file",
    }
    for name, message in cases.items():
        code, _, err = fnnet_cli("train", "optim", "--data", str(tmp_path / name), "--steps", "3")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], (name, err)
    code, _, err = fnnet_cli("train", "optim", "--data", str(tmp_path / "ok.npz"), "--batch", "21", "--steps", "3")
    assert code == 2 and "batch_size 21 is larger than the data (20 rows)" in err  # fit's rule and words
