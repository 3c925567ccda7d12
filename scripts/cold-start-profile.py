"""What a first `fnnet train optim` (empty compilation cache) costs, and what each proposed cut would save.

Run from the repository root: ``python scripts/cold-start-profile.py [--repeats 3]``.

Every measurement is a fresh process, repeated ``--repeats`` times with the
variants interleaved (round-robin, rotated each round), and reported as min and
median: on a shared machine the min is the cost, the median how much load added.

1. Whole process, seconds: the seed's PyTorch script; ``fnnet train optim``
   cold (empty ``FNNET_CACHE_DIR``), cold with ``--no-compile-cache`` (no cache
   written), warm; and cold with other JAX settings that stand for proposed
   changes (``JAX_DEFAULT_PRNG_IMPL=rbg``: cheaper random kernels; XLA flags
   that trade code quality for compile time).
2. Imports, seconds: ``import jax``, ``import optax``, ``from flax import nnx``,
   ``import fnnet.train`` (what ``fnnet train`` loads before any work), and
   ``import torch`` for the script's side.
3. Compiles: with ``JAX_LOG_COMPILES=1``, every program XLA compiles in a cold
   run, with its trace, lowering and compile seconds (min over the repeats).

It prints tables and writes ``cold-start-profile.json``. It changes nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "src" / "fnnet" / "_seed_optim_torch.py"
FNNET = [sys.executable, "-m", "fnnet", "train", "optim", "--quiet"]


def timed(argv, env=None, capture=False):
    start = time.perf_counter()
    out = subprocess.run(argv, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE if capture else subprocess.DEVNULL, text=True, check=True)
    return time.perf_counter() - start, (out.stderr if capture else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="cold-start-profile.json")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="fnnet-cold-"))
    fresh = iter(range(10**6))
    warm = scratch / "warm"
    timed(FNNET, {"FNNET_CACHE_DIR": str(warm)})  # fill the warm cache

    def cold(extra_env=None, extra_argv=()):
        return lambda: timed(FNNET + list(extra_argv),
                             {"FNNET_CACHE_DIR": str(scratch / f"c{next(fresh)}"), **(extra_env or {})})[0]

    def imp(statement):
        return lambda: timed([sys.executable, "-c", statement])[0]

    variants = {
        "torch script (seed's optim)": lambda: timed([sys.executable, str(SCRIPT)])[0],
        "fnnet train optim, cold (empty cache)": cold(),
        "fnnet train optim, cold, --no-compile-cache": cold(extra_argv=["--no-compile-cache"]),
        "fnnet train optim, cold, JAX_DEFAULT_PRNG_IMPL=rbg": cold({"JAX_DEFAULT_PRNG_IMPL": "rbg"}),
        "fnnet train optim, cold, XLA_FLAGS=--xla_backend_optimization_level=0":
            cold({"XLA_FLAGS": "--xla_backend_optimization_level=0"}),
        "fnnet train optim, cold, XLA_FLAGS=--xla_llvm_disable_expensive_passes=true":
            cold({"XLA_FLAGS": "--xla_llvm_disable_expensive_passes=true"}),
        "fnnet train optim, warm cache": lambda: timed(FNNET, {"FNNET_CACHE_DIR": str(warm)})[0],
        "python -c pass": imp("pass"),
        "import numpy": imp("import numpy"),
        "import jax": imp("import jax"),
        "import jax, optax": imp("import jax, optax"),
        "import jax; from flax import nnx": imp("import jax; from flax import nnx"),
        "import fnnet.train": imp("import fnnet.train"),
        "import fnnet.cli, report, train, distributed (what `fnnet train` loads)":
            imp("import fnnet.cli, fnnet.report, fnnet.train, fnnet.distributed"),
        "import torch": imp("import torch"),
    }
    names = list(variants)
    times = {n: [] for n in names}
    for r in range(args.repeats):
        print(f"round {r + 1} of {args.repeats}", file=sys.stderr)
        for n in names[r % len(names):] + names[:r % len(names)]:
            times[n].append(variants[n]())

    summary = {n: {"min": min(t), "median": statistics.median(t), "runs": t} for n, t in times.items()}
    print(f"{'whole process / import':74} {'min s':>7} {'median s':>9}")
    for n, s in summary.items():
        print(f"{n:74} {s['min']:7.2f} {s['median']:9.2f}", flush=True)

    # compiles: the log of a cold run, per program (min over repeats of each program's seconds)
    pattern = re.compile(r"Finished (tracing|jaxpr to MLIR module conversion|XLA compilation of) (?:jit\()?([\w<>]+)\)?"
                         r"(?: for jit)? in ([0-9.e-]+) sec")
    compiles = {}
    for variant, env in (("threefry", {}), ("rbg", {"JAX_DEFAULT_PRNG_IMPL": "rbg"})):
        per_run = []
        for _ in range(args.repeats):
            _, log = timed(FNNET, {"FNNET_CACHE_DIR": str(scratch / f"c{next(fresh)}"), "JAX_LOG_COMPILES": "1", **env},
                           capture=True)
            seen = collections.Counter()
            rows = []
            for phase, name, seconds in pattern.findall(log):
                if phase == "tracing":
                    seen[name] += 1
                    rows.append([f"{name}#{seen[name]}", float(seconds), 0.0, 0.0])
                else:
                    row = next((r for r in reversed(rows) if r[0] == f"{name}#{seen[name]}"), None)
                    if row is None:  # lowered or compiled without a tracing line of that name
                        seen[name] += 1
                        row = [f"{name}#{seen[name]}", 0.0, 0.0, 0.0]
                        rows.append(row)
                    row[2 if phase.startswith("jaxpr") else 3] += float(seconds)
            per_run.append(rows)
        merged = {}
        for rows in per_run:
            for name, tr, low, comp in rows:
                m = merged.setdefault(name, [[], [], []])
                m[0].append(tr), m[1].append(low), m[2].append(comp)
        compiles[variant] = {n: {"trace": min(v[0]), "lower": min(v[1]), "compile": min(v[2]), "runs": len(v[0])}
                             for n, v in merged.items()}

    for variant, programs in compiles.items():
        total = sum(p["trace"] + p["lower"] + p["compile"] for p in programs.values())
        print(f"\nprograms compiled in a cold run ({variant}): {len(programs)}, "
              f"trace+lower+compile {total:.2f} s (min over runs, per program)")
        print(f"{'program':32} {'trace s':>8} {'lower s':>8} {'compile s':>10}")
        for n, p in sorted(programs.items(), key=lambda kv: -kv[1]["compile"]):
            print(f"{n:32} {p['trace']:8.3f} {p['lower']:8.3f} {p['compile']:10.3f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    Path(args.json).write_text(json.dumps({"repeats": args.repeats, "cpus": os.cpu_count(), "load_1m_after": load,
                                           "processes_and_imports": summary, "compiles": compiles}, indent=1) + "\n")
    print(f"\n1-min load average at the end: {load}; written to {args.json}")


if __name__ == "__main__":
    main()
