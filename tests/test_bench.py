"""The benchmark's arithmetic and a smoke run of `fnnet bench` (speed itself is never asserted)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from fnnet.bench import Timing, check_targets, flops_per_step
from fnnet.data import Sizes, make_data, run_keys
from fnnet.lessons import lesson_functions

if os.environ.get("CI"):
    import torch  # noqa: F401  (CI must have it: a missing torch fails, never skips)
else:
    pytest.importorskip("torch")


@pytest.mark.parametrize("sizes", [Sizes(64, 1000, 100, 10), Sizes(256, 300, 500, 20)])
def test_flop_count_matches_xla_cost_analysis(sizes):
    """Our matmul count against XLA's own count for one gradient evaluation (elementwise adds a little)."""
    fns = lesson_functions("optim", sizes)
    keys = run_keys(0)
    params, batch = fns.init(keys.init), make_data(sizes, key=keys.data)
    cost = jax.jit(fns.grad_fn).lower(params, batch, None).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    assert flops_per_step(sizes) <= cost["flops"] <= 1.05 * flops_per_step(sizes)


def test_timing_arithmetic():
    t = Timing("fnnet", "seed", steps=500, compile_seconds=0.2, run_seconds=[0.3, 0.1, 0.2], flops_per_step=2e7)
    assert t.seconds == 0.2 and t.ms_per_step == pytest.approx(0.4)
    assert t.gflops == pytest.approx(2e7 * 500 / 0.2 / 1e9)


def test_targets_are_judged_from_the_measurements():
    doc = {"results": [
        {"workload": "seed", "impl": "fnnet", "speedup_vs_torch_eager": 4.5, "percent_of_peak": 50.0,
         "compile_seconds": 0.4},
        {"workload": "large", "impl": "fnnet", "speedup_vs_torch_eager": 2.0, "percent_of_peak": 90.0,
         "compile_seconds": 0.3},
    ]}
    met = {t["target"]: t["met"] for t in check_targets(doc)}
    assert met == {"seed: fnnet vs PyTorch eager": True, "seed: fnnet % of peak": False,
                   "seed: compile seconds": True, "large: fnnet % of peak": True}


def test_bench_command_smoke(tmp_path):
    out_json, plot = tmp_path / "b.json", tmp_path / "b.png"
    out = subprocess.run(
        [sys.executable, "-m", "fnnet", "bench", "--workloads", "seed", "--impls", "fnnet,jax-step,torch,numpy",
         "--repeats", "1", "--no-processes", "--no-sweep", "--json", str(out_json), "--plot", str(plot)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out_json.read_text())
    assert [r["impl"] for r in doc["results"]] == ["fnnet", "jax-step", "torch", "numpy"]
    for r in doc["results"]:
        assert r["ms_per_step"] > 0
        assert r["gflops"] == pytest.approx(doc["workloads"]["seed"]["flops_per_step"] / (r["ms_per_step"] / 1e3) / 1e9)
        assert r["percent_of_peak"] == pytest.approx(100 * r["gflops"] / doc["peak"]["peak"])
    torch_row = next(r for r in doc["results"] if r["impl"] == "torch")
    assert torch_row["speedup_vs_torch_eager"] == pytest.approx(1.0)
    assert doc["machine"]["threads"]["torch"] == os.cpu_count()
    assert "vs torch eager" in out.stdout and plot.read_bytes()[:4] == b"\x89PNG"


def test_bench_rejects_unknown_names():
    out = subprocess.run([sys.executable, "-m", "fnnet", "bench", "--workloads", "huge", "--json", "x.json"],
                         capture_output=True, text=True, timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "unknown workload or implementation: huge" in lines[0]
