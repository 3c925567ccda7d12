"""fnnet sweep: every (lr, seed) pair in one compiled program, equal to running each alone."""

import json

import numpy as np
import pytest

import fnnet
from fnnet import ConfigError
from fnnet.training.sweep import sweep

from conftest import SMALL


@pytest.mark.parametrize("lesson_id,steps,sizes", [
    ("optim", 500, None),  # the seed workload, whole run
    ("control_flow", 500, SMALL),  # random depth per step, momentum
    ("autograd", 200, SMALL),
    ("custom_function", 100, SMALL),
])
def test_sweep_equals_fit_pair_by_pair(lesson_id, steps, sizes):
    base = fnnet.LESSONS[lesson_id].lr
    lrs, seeds = [base, 2 * base], [0, 3]
    result = sweep(lesson_id, lrs, seeds, steps=steps, sizes=sizes)
    assert result.losses.shape == (2, 2, steps)
    for i, lr in enumerate(lrs):
        for j, seed in enumerate(seeds):
            alone = fnnet.fit(lesson_id, lr=lr, seed=seed, steps=steps, sizes=sizes).losses
            np.testing.assert_allclose(result.losses[i, j], alone, rtol=1e-5)
    assert not np.allclose(result.losses[0, 0], result.losses[1, 0])  # the lrs really differ
    assert not np.allclose(result.losses[0, 0], result.losses[0, 1])  # and so do the seeds


def test_a_diverging_learning_rate_is_reported_not_raised():
    result = sweep("nn", [1e-4, 10.0], 2, steps=60, sizes=SMALL)
    assert result.diverged.tolist() == [[False, False], [True, True]]
    assert result.best_lr == 1e-4
    record = result.record()
    assert record["losses"][1][0][-1] is None  # non-finite as JSON null
    json.dumps(record)


def test_second_sweep_compiles_nothing():
    first = sweep("custom_module", [1e-4, 2e-4], 2, steps=20, sizes=SMALL)
    second = sweep("custom_module", [3e-4, 5e-4], [7, 8], steps=20, sizes=SMALL)
    assert first.compile_seconds > 0 and second.compile_seconds == 0.0


@pytest.mark.parametrize("kwargs,message", [
    (dict(lesson_id="numpy", lrs=[1e-6]), "runs in NumPy"),
    (dict(lesson_id="nope", lrs=[1e-6]), "unknown lesson"),
    (dict(lesson_id="nn", lrs=[]), "non-empty list"),
    (dict(lesson_id="nn", lrs=1e-4), "non-empty list"),
    (dict(lesson_id="nn", lrs=[1e-4, -1.0]), "lr must be a finite positive number"),
    (dict(lesson_id="nn", lrs=[1e-4], seeds=0), "seeds must be a positive integer"),
    (dict(lesson_id="nn", lrs=[1e-4], seeds=[1, -2]), "non-negative integers"),
    (dict(lesson_id="nn", lrs=[1e-4], optimizer="lbfgs"), "unknown optimizer"),
    (dict(lesson_id="nn", lrs=[1e-4], steps=0), "steps must be a positive integer"),
])
def test_bad_sweeps_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        sweep(kwargs.pop("lesson_id"), **kwargs)


def test_sweep_command(fnnet_cli, tmp_path):
    out_json, plot = tmp_path / "s.json", tmp_path / "s.png"
    code, out, err = fnnet_cli(
        "sweep", "custom_module", "--lr", "1e-4,3e-4,10", "--seeds", "2",
        "--steps", "40", "--batch", "8", "--d-in", "20", "--hidden", "10", "--d-out", "3",
        "--json", str(out_json), "--plot", str(plot))
    assert code == 0, err
    assert "6 runs of 40 steps in one program" in out
    rows = {line.split()[0]: line for line in out.splitlines()[3:6]}
    assert "<- best" in rows["0.0003"] and "2/2" in rows["10"]
    doc = json.loads(out_json.read_text())
    assert doc["lrs"] == [1e-4, 3e-4, 10.0] and doc["seeds"] == [0, 1] and doc["best_lr"] == 3e-4
    assert np.array(doc["losses"][:2], dtype=float).shape == (2, 2, 40)
    assert plot.read_bytes()[:4] == b"\x89PNG"
