"""``fnnet bench``: run the benchmark (``fnnet.cli.bench``), print its tables, write its JSON and plot.

Its own module because ``fnnet.cli.bench`` is the benchmark itself, a library
(``fnnet.bench`` is the same module); the benchmark is looked up when the command
runs, so a test may replace ``fnnet.bench.run_bench``.
"""

from __future__ import annotations

import sys

from fnnet.cli.parser import name_list


def run(args) -> int:
    """Benchmark, judge against the targets (``--targets``), print, write; 1 when ``--strict`` and unreliable."""
    from fnnet import report
    from fnnet.cli import bench
    from fnnet.cli.paths import check_outputs, make_parents

    workloads = name_list(args.workloads) if isinstance(args.workloads, str) else args.workloads
    impls = name_list(args.impls) if isinstance(args.impls, str) else args.impls
    out_json = report.check_output_path(args.json, (".json",), "--json")
    plot = report.check_output_path(args.plot, report.PLOT_FORMATS, "--plot")
    check_outputs([("--json", out_json), ("--plot", plot)])
    doc = bench.run_bench(workloads, impls, repeats=args.repeats, processes=not args.no_processes,
                          sweep=not args.no_sweep, log=lambda line: print(f"bench: {line}", file=sys.stderr))
    if args.targets:
        doc["targets"] = bench.check_targets(doc)
    print(report.bench_tables(doc))
    make_parents(out_json, "--json")
    report.write_json(out_json, doc)
    make_parents(plot, "--plot")
    report.write_bench_plot(plot, doc)
    print(f"results written to {out_json} and {plot}")
    if args.strict and not doc["reliable"]:
        print("fnnet bench: machine busy, figures not reliable (--strict)", file=sys.stderr)
        return 1
    return 0
