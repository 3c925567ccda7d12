"""``fnnet sweep``: every (learning rate, seed) pair of one lesson trained in one compiled program."""

from __future__ import annotations

from fnnet.cli.common import given_sizes


def run(args) -> int:
    """Run the sweep (``fnnet.training.sweep.sweep``), print its table, write ``--json``/``--plot``; exit status 0."""
    from fnnet import report
    from fnnet.cli.paths import check_outputs, make_parents
    from fnnet.lessons import get_lesson

    lesson = get_lesson(args.lesson)
    out_json = args.json and report.check_output_path(args.json, (".json",), "--json")
    plot = args.plot and report.check_output_path(args.plot, report.PLOT_FORMATS, "--plot")
    check_outputs([(flag, p) for flag, p in (("--json", out_json), ("--plot", plot)) if p])
    from fnnet.training.sweep import sweep

    result = sweep(lesson.id, args.lr, args.seeds, steps=args.steps, sizes=given_sizes(args) or None,
                   optimizer=args.optimizer)
    runs = len(result.lrs) * len(result.seeds)
    print(f"{lesson.id}: {runs} runs of {result.config['steps']} steps in one program "
          f"(compile {result.compile_seconds:.2f} s, run {result.run_seconds:.2f} s)")
    print(report.sweep_table(result))
    if result.best_lr is None:
        print("every learning rate diverged for some seed; try smaller ones")
    if out_json:
        make_parents(out_json, "--json")
        report.write_json(out_json, result.record())
        print(f"sweep written to {out_json}")
    if plot:
        make_parents(plot, "--plot")
        report.write_sweep_plot(plot, result)
        print(f"plot written to {plot}")
    return 0
