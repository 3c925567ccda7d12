"""``fnnet compare``: each lesson in PyTorch and in fnnet from the same start, a table and a verdict.

The cheap checks (lessons, output paths, sizes, ``--perturb``) run before torch
is imported. Exit status 1 when a lesson differs beyond tolerance.
"""

from __future__ import annotations

import math
import sys

from fnnet.cli.common import given_sizes, is_sine, lesson_ids, usage


def run(args) -> int:
    """Compare every lesson named, print the table and the notes, write ``--json``/``--plot``; 0 or 1."""
    from fnnet import report
    from fnnet.cli.paths import make_parents

    ids, out_json, plot = _checked(args)
    checks = [_check_one(args, lesson_id) for lesson_id in ids]
    print(report.compare_table(checks))
    for c in checks:
        _print_notes(c.f32)
    if out_json:
        make_parents(out_json, "--json")
        report.write_json(out_json, {"lessons": [c.record() for c in checks]})
        print(f"comparisons written to {out_json}")
    if plot:
        make_parents(plot, "--plot")
        report.write_compare_plot(plot, checks)
        print(f"plot written to {plot}")
    failed = [c.f32.lesson for c in checks if not c.ok]
    if failed:
        print(f"fnnet compare: {', '.join(failed)} differ beyond tolerance", file=sys.stderr)
        return 1
    return 0


def _checked(args):
    """The lessons, and the checked ``--json`` and ``--plot`` paths; a ConfigError for what cannot run."""
    from fnnet import report
    from fnnet.cli.paths import check_outputs

    ids = lesson_ids(args.lesson)
    out_json = args.json and report.check_output_path(args.json, (".json",), "--json")
    plot = args.plot and report.check_output_path(args.plot, report.PLOT_FORMATS, "--plot")
    check_outputs([(flag, p) for flag, p in (("--json", out_json), ("--plot", plot)) if p])
    if given_sizes(args) and all(is_sine(i) for i in ids):
        raise usage("the sine lessons fit sin(x) on fixed data; --batch/--d-in/--hidden/--d-out are for "
                    "the classic edition")
    if not math.isfinite(args.perturb):
        raise usage(f"--perturb: expected a finite number, got {args.perturb}")
    return ids, out_json, plot


def _check_one(args, lesson_id: str):
    """One lesson compared (``fnnet.parity.compare.check``); its verdict on a stderr that is a terminal."""
    from fnnet.data import Sizes
    from fnnet.parity.compare import check  # imports torch: after the cheap checks

    sizes = None if is_sine(lesson_id) else Sizes(**given_sizes(args))
    result = check(lesson_id, steps=args.steps, seed=args.seed, sizes=sizes, perturb=args.perturb, x64=args.x64,
                   repeats=args.repeats)
    if sys.stderr.isatty():
        print(f"compared {lesson_id}: {result.verdict}", file=sys.stderr)
    return result


def _print_notes(f32) -> None:
    """Under the table: a sine lesson's fitted polynomial from both sides; a chaotic lesson's compared span."""
    if f32.torch_params is not None and is_sine(f32.lesson):
        from fnnet.lessons.sine import result_line

        print(f"{f32.lesson:20}  pytorch  {result_line(f32.lesson, f32.torch_params)}")
        print(f"{'':20}  fnnet    {result_line(f32.lesson, f32.jax_params)}")
    if f32.exact_steps < f32.steps:
        print(f"{f32.lesson:20}  curves compared step by step over steps 0-{f32.exact_steps - 1}: a start moved by "
              f"one rounding error alone moves the loss by 1e-3 at step {f32.horizon} (chaotic near the floor); "
              f"after that the mean of the last {min(200, f32.steps)} losses differs by {f32.tail_diff:.1e}")
