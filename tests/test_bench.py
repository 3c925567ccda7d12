"""The benchmark's arithmetic, its load handling, and a smoke run of `fnnet bench` at tiny sizes.

Speed itself is never asserted: the figures' arithmetic, the interleaving, and
what is printed when the machine is too busy for a figure to be trusted.
"""

import contextlib
import io
import json
import os
from pathlib import Path

import jax
import pytest

from fnnet import bench
from fnnet.cli.bench import Prepared, check_targets, flops_per_step, run_rounds, summarize
from fnnet.data import Sizes, make_data, run_keys
from fnnet.lessons import lesson_functions
from fnnet.cli.report import bench_tables

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


def test_summary_of_repeats():
    s = summarize([0.3, 0.1, 0.2, 0.2])
    assert (s["min"], s["median"], s["max"]) == (0.1, 0.2, 0.3)
    assert s["spread"] == pytest.approx(1.0) and s["runs"] == [0.3, 0.1, 0.2, 0.2]
    with pytest.raises(ValueError):
        summarize([])


def test_rounds_interleave_every_item_in_rotated_order():
    order = []
    items = {name: Prepared(lambda name=name: order.append(name) or 1.0) for name in "abc"}
    times = run_rounds(items, 4)
    assert order == list("abc" "bca" "cab" "abc")
    assert times == {name: [1.0] * 4 for name in "abc"}


def _fake_machine(monkeypatch, peak_seconds, fnnet_seconds):
    """A machine whose matmul peak and fnnet step take the seconds given (iterators), without running anything."""
    calls = {"peak": 0}

    def prepare_peak(n):
        def run():
            calls["peak"] += 1
            return next(peak_seconds)
        return {name: Prepared(run) for name in ("jax", "torch", "numpy")}

    monkeypatch.setattr(bench, "prepare_peak", prepare_peak)
    monkeypatch.setattr(bench, "prepare_ceiling", lambda sizes: (Prepared(lambda: 1.0), 1e9))
    monkeypatch.setitem(bench.PREPARERS, "fnnet", lambda w, **kw: Prepared(lambda: next(fnnet_seconds), 0.1))
    return calls


def test_a_figure_above_a_badly_measured_peak_is_measured_again(monkeypatch):
    tiny = bench.WORKLOADS["tiny"]
    step_gflops = flops_per_step(tiny.sizes) * tiny.steps / 1e9
    fast = iter([step_gflops / 50.0] * 100)  # fnnet at 50 GFLOP/s
    # the first rounds see a busy machine (peak 10 GFLOP/s); the re-measure finds 100
    n = 128
    peak = iter([2 * n**3 / 1e9 / 10.0] * 6 + [2 * n**3 / 1e9 / 100.0] * 100)
    calls = _fake_machine(monkeypatch, peak, fast)
    doc = bench.run_bench(["tiny"], ["fnnet"], repeats=2, processes=False, sweep=False, peak_n=n)
    assert doc["reliable"] and doc["busy"] == []
    assert calls["peak"] == 9  # 2 rounds x 3 frameworks, then one more round of the peak
    assert doc["peak"]["gflops"] == pytest.approx(100.0)
    assert doc["results"][0]["percent_of_peak"] == pytest.approx(50.0)
    assert "busy" not in bench_tables(doc)


def test_a_figure_still_above_the_peak_is_never_printed_and_marks_the_run(monkeypatch):
    tiny = bench.WORKLOADS["tiny"]
    step_gflops = flops_per_step(tiny.sizes) * tiny.steps / 1e9
    n = 128
    _fake_machine(monkeypatch, iter([2 * n**3 / 1e9 / 10.0] * 100), iter([step_gflops / 50.0] * 100))
    doc = bench.run_bench(["tiny"], ["fnnet"], repeats=2, processes=False, sweep=False, peak_n=n)
    assert not doc["reliable"] and doc["busy"] == ["tiny fnnet ran faster than the measured peak"]
    assert len(doc["peak"]["jax"]["runs"]) == 2 + bench.PEAK_RETRIES
    table = bench_tables(doc)
    assert "500%" not in table and "busy" in table
    assert "machine busy, not reliable" in table.splitlines()[-1]
    assert not any(t["met"] for t in check_targets({**doc, "results": [{**doc["results"][0], "workload": "seed"}]})
                   if "peak" in t["target"])


def test_targets_are_judged_from_the_medians():
    speed = {"min": 3.0, "median": 4.5, "max": 5.0}
    doc = {"results": [
        {"workload": "seed", "impl": "fnnet", "speedup_vs_torch_eager": speed, "percent_of_peak": 50.0,
         "compile_seconds": 0.4},
        {"workload": "large", "impl": "fnnet", "speedup_vs_torch_eager": speed, "percent_of_peak": 90.0,
         "compile_seconds": 0.3},
    ]}
    met = {t["target"]: t["met"] for t in check_targets(doc)}
    assert met == {"seed: fnnet vs PyTorch eager": True, "seed: fnnet % of peak": False,
                   "seed: compile seconds": True, "large: fnnet % of peak": True}


def test_whole_processes_are_interleaved_and_cold_means_an_empty_cache(monkeypatch):
    seen = []

    class Done:
        returncode = 0

    def fake_run(argv, env, **kwargs):
        folder = Path(env["FNNET_CACHE_DIR"])
        script = "torch" if argv[-1].endswith(".py") else "fnnet"
        seen.append((script, folder.name, folder.exists() and any(folder.iterdir())))
        if script == "fnnet":
            folder.mkdir(exist_ok=True)
            (folder / "program").write_text("compiled")
        return Done()

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    doc = bench.time_processes(repeats=3)
    assert list(doc) == ["torch script", "fnnet train optim (cold)", "fnnet train optim (warm cache)"]
    cold = [s for s in seen if s[0] == "fnnet" and s[1] != "warm"]
    warm = [s for s in seen if s[1] == "warm"]
    assert len(cold) == len(warm) == 4 and len({s[1] for s in cold}) == 4  # a new folder for every cold run
    assert not any(s[2] for s in cold) and all(s[2] for s in warm[1:])  # cold: empty; warm: filled
    timed = [s[0] + ("-warm" if s[1] == "warm" else "") for s in seen[3:]]
    assert timed == ["torch", "fnnet", "fnnet-warm", "fnnet", "fnnet-warm", "torch", "fnnet-warm", "torch", "fnnet"]
    for p in doc.values():
        assert len(p["seconds"]["runs"]) == 3 and len(p["ratio_to_torch_script"]["runs"]) == 3


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`fnnet bench` itself, in this process, at tiny sizes (peak on 128x128): exit code, output, JSON."""
    from command import run_main as main

    folder = tmp_path_factory.mktemp("bench")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["bench", "--workloads", "tiny", "--impls", "fnnet,jax-step,torch,numpy", "--repeats", "2",
                     "--no-processes", "--no-sweep", "--json", str(folder / "b.json"), "--plot", str(folder / "b.png")])
    return code, out.getvalue(), err.getvalue(), folder


def test_bench_command_smoke(tiny_run):
    code, out, err, folder = tiny_run
    assert code == 0, err
    doc = json.loads((folder / "b.json").read_text())
    assert [r["impl"] for r in doc["results"]] == ["fnnet", "jax-step", "torch", "numpy"]
    flops = doc["workloads"]["tiny"]["flops_per_step"]
    for r in doc["results"]:
        assert len(r["ms_per_step"]["runs"]) == 2 and r["ms_per_step"]["min"] > 0
        assert r["gflops"]["max"] == pytest.approx(flops / (r["ms_per_step"]["min"] / 1e3) / 1e9)
        assert r["percent_of_peak"] == pytest.approx(100 * r["gflops"]["max"] / doc["peak"]["gflops"])
        assert len(r["speedup_vs_torch_eager"]["runs"]) == 2
    torch_row = next(r for r in doc["results"] if r["impl"] == "torch")
    assert torch_row["speedup_vs_torch_eager"]["runs"] == [1.0, 1.0]
    assert torch_row["torch_threads"] == doc["machine"]["torch_threads_chosen"]["tiny"] in (1, os.cpu_count())
    assert set(doc["workloads"]["tiny"]["torch_threads"]["tried"]) == {"1", str(os.cpu_count())}
    numpy_row = next(r for r in doc["results"] if r["impl"] == "numpy")
    assert numpy_row["blas_threads"] in (1, os.cpu_count()) and set(numpy_row["blas_threads_tried"]) == {"1", str(os.cpu_count())}
    assert doc["peak"]["n"] == 128 and "targets" not in doc
    assert "vs torch eager" in out and "spread" in out and "wanted" not in out  # targets only with --targets
    assert (folder / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_targets_and_strict_flags(tiny_run, fnnet_cli, monkeypatch, tmp_path):
    doc = json.loads((tiny_run[3] / "b.json").read_text())
    as_seed = json.loads(json.dumps(doc))  # tiny has no targets; call it seed to see the table
    as_seed["workloads"] = {"seed": as_seed["workloads"]["tiny"]}
    for r in as_seed["results"]:
        r["workload"] = "seed"
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: json.loads(json.dumps(as_seed)))
    argv = ["bench", "--workloads", "tiny", "--json", tmp_path / "b.json", "--plot", tmp_path / "b.png"]
    code, out, _ = fnnet_cli(*argv)
    assert code == 0 and "seed: fnnet vs PyTorch eager" not in out  # the targets leave the default output
    code, out, _ = fnnet_cli(*argv, "--targets")
    assert code == 0 and "seed: fnnet vs PyTorch eager" in out
    assert "targets" in json.loads((tmp_path / "b.json").read_text())
    busy = {**doc, "reliable": False, "busy": ["tiny fnnet ran faster than the measured peak"]}
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: json.loads(json.dumps(busy)))
    code, out, err = fnnet_cli(*argv)
    assert code == 0 and "machine busy, not reliable: tiny fnnet ran faster" in out
    code, out, err = fnnet_cli(*argv, "--strict")
    assert code == 1 and "machine busy" in err and json.loads((tmp_path / "b.json").read_text())["reliable"] is False


@pytest.mark.parametrize("argv,message", [
    (["--workloads", "huge"], "unknown workload or implementation: huge"),
    (["--impls", "jax,fnnet"], "unknown workload or implementation: jax"),
    (["--repeats", "0"], "--repeats: expected a positive integer"),
    (["--json", "b.csv"], "unknown extension '.csv'"),
])
def test_bench_rejects_bad_input_in_one_line(fnnet_cli, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = fnnet_cli("bench", *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no half-written file
