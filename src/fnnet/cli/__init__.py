"""The ``fnnet`` command: parses arguments, calls the library, prints.

Mistakes in what the user typed print one line to stderr and exit 2 before any
file is written; a diverging run exits 3; a write the storage refuses (a full
disk, a read-only folder) exits 4; Ctrl-C or SIGTERM in a checkpointed run
saves, then exits 130 or 143; with several processes, the death of another
one exits 5 at once. Each is one line, mapped in ``main``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings

EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_STORAGE = 4  # a write failed after training started (disk full, read-only); the last good files kept
EXIT_PEER_LOST = 5  # several processes: another one died; this one stops at once (no wait at JAX's shutdown)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--seed` must never be read as `--seeds` (issue 14)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, no usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
    return value


LESSON_IDS = ("numpy", "tensors", "autograd", "custom_function", "nn", "optim", "custom_module", "control_flow")
SINE_IDS = tuple(f"sine_{i}" for i in LESSON_IDS)
EDITION_HELP = ("a lesson id, or an edition: classic (default: " + ", ".join(LESSON_IDS) + "), sine (today's "
                "pytorch.org edition, fitting sin(x): " + ", ".join(SINE_IDS) + ") or all (both)")


def build_parser() -> argparse.ArgumentParser:
    from fnnet import __version__

    parser = _Parser(prog="fnnet", description="The 'Learning PyTorch with Examples' tutorial, the JAX way.")
    parser.add_argument("--version", action="version", version=f"fnnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("lessons", help="list the lessons")
    train = sub.add_parser(
        "train",
        help="train one lesson or all of them",
        description="Train a lesson (default: all of them) and print a summary table.",
    )
    train.add_argument("lesson", nargs="?", default="classic", metavar="LESSON|classic|sine|all", help=EDITION_HELP)
    train.add_argument("--steps", type=_positive_int,
                       help="training steps (default: the lesson's, 500 classic, 2000 sine, 30000 sine_control_flow)")
    train.add_argument("--lr", type=_positive_float, help="learning rate (default: the lesson's)")
    train.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "rmsprop"),
                       help="optimizer (default: the lesson's); without --lr it runs at its own default "
                            "rate for the lesson (see fnnet.optimizers.DEFAULT_LRS), never another optimizer's")
    _add_run_options(train)
    train.add_argument("--log-every", type=_positive_int,
                       help="steps per compiled chunk (default: the lesson's print interval, 100; 2000 for "
                            "sine_control_flow)")
    train.add_argument("--device", choices=("cpu", "gpu", "tpu"), help="backend to run on (default: JAX's)")
    train.add_argument("--metrics", metavar="PATH", help="write losses and timings to PATH.json or PATH.csv")
    train.add_argument("--plot", metavar="PATH",
                       help="write the loss curve (log scale) to PATH.png; for sine lessons also sin(x) and the fit")
    train.add_argument("--save", metavar="PATH.npz",
                       help="write the trained weights to PATH.npz under PyTorch's names and layout "
                            "(with several lessons, PATH must contain {lesson})")
    train.add_argument("--quiet", action="store_true", help="no progress output, only the table")
    train.add_argument("--data", metavar="PATH",
                       help="train on your data: a .npz with arrays x (rows, D_in) and y (rows, D_out), or a "
                            "folder with x.npy and y.npy; --batch is then the minibatch size (default: all rows), "
                            "reshuffled every epoch")
    train.add_argument("--devices", type=_devices, metavar="N|all",
                       help="train data-parallel on N devices (or all); a step's rows must split evenly")
    many = train.add_argument_group(
        "several processes (hosts)",
        "Run the same command on every host with its own --process-id (or set FNNET_COORDINATOR, "
        "FNNET_NUM_PROCESSES, FNNET_PROCESS_ID). Every device of every process joins one data-parallel mesh. "
        "Only process 0 prints and writes --metrics/--plot; another process writes them only when the path "
        "contains {process}, which becomes its id.")
    many.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
    many.add_argument("--num-processes", type=_positive_int, metavar="P", help="how many processes")
    many.add_argument("--process-id", type=_non_negative_int, metavar="I", help="this process, 0..P-1")
    many.add_argument("--init-timeout", type=_positive_int, default=60, metavar="S",
                      help="seconds to wait for the other processes (default 60)")
    train.add_argument("--checkpoint-dir", metavar="DIR",
                       help="save checkpoints in DIR (one sub-folder per lesson with 'all')")
    train.add_argument("--checkpoint-every", type=_positive_int, metavar="K",
                       help="steps between checkpoints (default: --log-every)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the newest good checkpoint in --checkpoint-dir")

    compare = sub.add_parser(
        "compare",
        help="train lessons in PyTorch and in fnnet from the same start and compare",
        description=(
            "Run each lesson in PyTorch (the tutorial's code) and in fnnet from the same weights, data and "
            "depth schedule; print both losses, their worst relative difference, the step-0 gradient "
            "difference, ms/step and a verdict. Exit 1 if a lesson fails. Needs PyTorch."
        ),
    )
    compare.add_argument("lesson", nargs="?", default="classic", metavar="LESSON|classic|sine|all", help=EDITION_HELP)
    compare.add_argument("--steps", type=_positive_int, help="training steps (default: the lesson's)")
    _add_run_options(compare)
    compare.add_argument("--x64", action="store_true", help="compare in float64 instead of float32")
    compare.add_argument("--repeats", type=_non_negative_int, default=3, metavar="K",
                         help="timed rounds of both sides after the parity run, interleaved; torch with 1 thread "
                              "and with every core, the faster reported (default 3; 0: the parity run's time)")
    compare.add_argument("--perturb", type=float, default=0.0, metavar="EPS",
                         help="scale fnnet's starting weights by 1+EPS, to watch the check fail (default 0)")
    compare.add_argument("--json", metavar="PATH", help="write every comparison to PATH.json")
    compare.add_argument("--plot", metavar="PATH", help="write PyTorch and fnnet curves, a panel per lesson")

    sweep = sub.add_parser(
        "sweep",
        help="train every (learning rate, seed) pair of a lesson in one compiled program",
        description="Train LESSON for every learning rate and seed at once (jit of vmap over whole runs) "
                    "and print the final loss per learning rate.",
    )
    sweep.add_argument("lesson", metavar="LESSON",
                       help=f"a JAX lesson: {', '.join(LESSON_IDS[1:])}, or one of the sine edition's but sine_numpy")
    sweep.add_argument("--lr", type=_lr_list, required=True, metavar="A,B,...", help="learning rates, comma-separated")
    sweep.add_argument("--seeds", type=_positive_int, default=1, metavar="K", help="seeds 0..K-1 (default 1)")
    sweep.add_argument("--steps", type=_positive_int, help="steps of each run (default: the lesson's)")
    sweep.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "rmsprop"),
                       help="optimizer (default: the lesson's)")
    _add_size_options(sweep)
    sweep.add_argument("--json", metavar="PATH", help="write every run's losses to PATH.json")
    sweep.add_argument("--plot", metavar="PATH", help="write all curves, coloured by learning rate, to PATH.png")
    bench = sub.add_parser(
        "bench",
        help="time fnnet against PyTorch, torch.compile and NumPy, and against the machine's peak",
        description="Benchmark the seed workload (two-layer net, Adam) and grown ones: compile time apart; "
                    "every implementation, the matmul peak and the shape ceilings timed once per round, "
                    "interleaved; min, median and spread of the rounds. Needs PyTorch. Takes a few minutes.",
    )
    bench.add_argument("--workloads", type=_name_list, default="seed,wide,large", metavar="A,B",
                       help="of: seed, wide, large, tiny (default seed,wide,large; tiny is a smoke test)")
    bench.add_argument("--impls", type=_name_list, default="fnnet,jax-step,torch,torch.compile,numpy",
                       metavar="A,B", help="of: fnnet, jax-step, torch, torch.compile, numpy (default all)")
    bench.add_argument("--repeats", type=_positive_int, default=5, help="timed rounds (default 5)")
    bench.add_argument("--no-processes", action="store_true", help="skip the whole-process timings")
    bench.add_argument("--no-sweep", action="store_true", help="skip the 64-run sweep timings")
    bench.add_argument("--targets", action="store_true", help="also judge the results against the project's targets")
    bench.add_argument("--strict", action="store_true",
                       help="exit 1 when the machine was too busy for the figures to be reliable")
    bench.add_argument("--json", metavar="PATH", default="fnnet-bench.json", help="(default fnnet-bench.json)")
    bench.add_argument("--plot", metavar="PATH", default="fnnet-bench.png", help="(default fnnet-bench.png)")
    for command in (train, compare, sweep):
        command.add_argument("--no-compile-cache", action="store_true",
                             help="do not keep compiled programs on disk between runs")
    return parser


def _devices(text: str):
    return "all" if text == "all" else _positive_int(text)


def _for_process(path, process: int):
    """Process 0 writes PATH; another process writes only where PATH names it with {process}."""
    if path is None:
        return None
    if "{process}" in path:
        return path.replace("{process}", str(process))
    return path if process == 0 else None


def _name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _lr_list(text: str) -> list[float]:
    return [_positive_float(part) for part in text.split(",")]


def _add_run_options(parser):
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    _add_size_options(parser)


def _add_size_options(parser):
    parser.add_argument("--batch", type=_positive_int, help="N, rows of data (default 64)")
    parser.add_argument("--d-in", type=_positive_int, help="D_in, input features (default 1000)")
    parser.add_argument("--hidden", type=_positive_int, help="H, hidden width (default 100)")
    parser.add_argument("--d-out", type=_positive_int, help="D_out, outputs (default 10)")


def _given_sizes(args) -> dict:
    """The sizes the user typed (a dict of the flags given); fit fills the rest from the data or the defaults."""
    given = {"batch": args.batch, "d_in": args.d_in, "hidden": args.hidden, "d_out": args.d_out}
    return {k: v for k, v in given.items() if v is not None}


def _sizes(args):
    from fnnet.data import Sizes

    return Sizes(**_given_sizes(args))


def _lessons() -> int:
    from fnnet.lessons import LESSONS
    from fnnet.cli.report import format_table

    rows = [[l.id, l.edition, l.model, l.gradient, l.backend, l.optimizer, f"{l.lr:g}", str(l.steps), l.idea]
            for l in LESSONS.values()]
    print(format_table(["lesson", "edition", "model", "gradient", "runs in", "optimizer", "lr", "steps", "what it adds"],
                       rows))
    return 0


def _train(args) -> int:
    import numpy as np

    import jax

    from fnnet import report
    from fnnet.runtime.distributed import initialize, settings
    from fnnet.lessons import LESSONS, get_lesson
    from fnnet.training.fit import fit, resolve_device

    joined = settings(args.coordinator, args.num_processes, args.process_id)
    process = joined[2] if joined else 0
    if joined:
        args.metrics = _for_process(args.metrics, process)
        args.plot = _for_process(args.plot, process)
        if process != 0:
            args.quiet = True
    ids = _lesson_ids(args.lesson)
    if args.optimizer not in (None, "sgd"):  # the NumPy lessons have only their hand-written SGD
        _skip_numpy_lessons(ids, f"it runs only SGD, not {args.optimizer}")
    sine_ids = [i for i in ids if LESSONS[i].edition == "sine"]
    metrics = args.metrics and report.check_output_path(args.metrics, report.METRICS_FORMATS, "--metrics")
    plot = args.plot and report.check_output_path(args.plot, report.PLOT_FORMATS, "--plot")
    if joined:
        initialize(*joined, timeout=args.init_timeout)  # before anything else touches a JAX backend
    device = resolve_device(args.device) if args.device else None
    if (joined and joined[1] > 1) or (args.devices not in (None, 1) and len(jax.devices()) > 1):
        _skip_numpy_lessons(ids, "it runs in NumPy on one device")
    sizes, data, batch_size, local = _given_sizes(args), None, None, False
    if args.data is not None:  # --batch is the minibatch size; fit checks the data and the sizes (one rule)
        from fnnet.data import load_data, process_rows

        x, y = load_data(args.data)
        batch_size, sizes = args.batch, {k: v for k, v in sizes.items() if k != "batch"}
        local = bool(joined) and joined[1] > 1 and batch_size in (None, np.shape(x)[0])
        if local:  # full batch over several processes: this one reads and keeps only its own rows
            x, y = process_rows(x, y, process, joined[1])
            batch_size = None
        data = (x, y)
        if len(ids) > 1 and sine_ids == ids:
            raise _usage("--data trains several lessons on one data set; the sine lessons take different shapes "
                         "(x (rows, 1), or (rows, 3) for sine_nn/sine_optim): give one sine lesson")
        if sine_ids and len(ids) > len(sine_ids):  # your data has the classic shapes, not the sine lessons'
            ids = [i for i in ids if i not in sine_ids]
            print("note: the sine lessons skipped (they fit sin(x) on their own data)", file=sys.stderr)
        if batch_size not in (None, np.shape(x)[0]):
            _skip_numpy_lessons(ids, "it trains on all rows every step")
    save = args.save and _save_paths(args.save, ids)

    if args.checkpoint_dir is None and (args.resume or args.checkpoint_every):
        raise _usage(f"{'--resume' if args.resume else '--checkpoint-every'} needs --checkpoint-dir")
    folders = {lesson_id: None for lesson_id in ids}
    resume = {lesson_id: args.resume for lesson_id in ids}
    if joined and joined[1] > 1:  # the folder checks below are collectives: every process must take part
        from fnnet.runtime.placement import process_values

        if len(set(process_values(args.checkpoint_dir is not None).tolist())) > 1:
            raise _usage("--checkpoint-dir was given to some processes only; give it to every process or to none")
    if args.checkpoint_dir is not None:  # every lesson's folder checked before the first trains (issue 14)
        folders, resume = _checkpoint_folders(args.checkpoint_dir, ids, args.resume)

    results = []
    with jax.default_device(device) if device else contextlib.nullcontext(), _keep_metrics(metrics, results):
        for lesson_id in ids:
            sine = LESSONS[lesson_id].edition == "sine"
            if sine and sizes and any(LESSONS[i].edition == "classic" for i in ids):
                lesson_sizes = None  # the sizes are for the classic lessons of the run
            else:
                lesson_sizes = sizes or None
            result = fit(
                lesson_id, steps=args.steps, lr=args.lr, optimizer=args.optimizer, seed=args.seed,
                sizes=lesson_sizes, log_every=args.log_every, progress=False if args.quiet else None,
                checkpoint_dir=folders[lesson_id], checkpoint_every=args.checkpoint_every, resume=resume[lesson_id],
                data=data, batch_size=batch_size, devices=args.devices, local_data=local,
            )
            results.append(result)
            if save and process == 0:
                _save(save[lesson_id], result)
            if not args.quiet and not sys.stderr.isatty():
                print(f"trained {lesson_id}: {len(result.losses)} steps, last loss {result.losses[-1]:.4g}",
                      file=sys.stderr)
    if process != 0:
        if metrics:
            report.write_metrics(metrics, results)
        if plot:
            report.write_plot(plot, results)
        return 0
    if metrics:  # files before the table: a failed write must not follow a table that looks like success
        report.write_metrics(metrics, results)
    if plot:
        report.write_plot(plot, results)
    if len(results) == 1 and results[0].lesson in sine_ids and not args.quiet:
        from fnnet.lessons.sine import printed_losses

        for t, loss in printed_losses(results[0].losses, LESSONS[results[0].lesson].print_every):
            print(t, loss)  # the tutorial's own log lines
    print(report.summary_table(results))
    for r in results:
        if r.lesson in sine_ids:
            from fnnet.lessons.sine import result_line

            print(f"{r.lesson}: {result_line(r.lesson, r.params)}")
    if metrics:
        print(f"metrics written to {metrics}")
    if plot:
        print(f"plot written to {plot}")
    if save:
        print(f"weights written to {', '.join(str(p) for p in save.values())}")
    return 0


@contextlib.contextmanager
def _keep_metrics(path, results: list):
    """When a lesson of several fails (diverges, a write fails, Ctrl-C), write the metrics of those trained before it.

    The error keeps its one line and exit status; the line says where those metrics went.
    """
    from fnnet.errors import DivergenceError, Interrupted, StorageError

    try:
        yield
    except (DivergenceError, StorageError, Interrupted) as err:
        if path and results:  # (another process has a path only where it names its own file)
            from fnnet import report

            done = f"the metrics of the {len(results)} lesson(s) trained before it"
            try:
                report.write_metrics(path, results)
                note = f"; {done} were written to {path}"
            except StorageError as failed:
                note = f"; {done} could not be written either ({failed})"
            err.args = (f"{err.args[0] if err.args else err}{note}", *err.args[1:])
        raise


def _lesson_ids(choice: str) -> list[str]:
    """The lessons a LESSON|classic|sine|all argument names."""
    from fnnet.lessons import EDITIONS, edition_ids, get_lesson

    if choice in (*EDITIONS, "all"):
        return edition_ids(choice)
    return [get_lesson(choice).id]


def _save_paths(path: str, ids: list[str]) -> dict:
    """Where ``--save`` writes each lesson's weights, checked before training."""
    from fnnet import report

    if len(ids) > 1 and "{lesson}" not in path:
        raise _usage("--save with several lessons needs {lesson} in the path, e.g. --save 'weights-{lesson}.npz'")
    return {i: report.check_output_path(path.replace("{lesson}", i), (".npz",), "--save") for i in ids}


def _save(path, result) -> None:
    """The trained weights as ``.npz``, under PyTorch's names and layout (``fnnet.compare.torch_named``)."""
    import numpy as np

    from fnnet.parity.compare import torch_named
    from fnnet.cli.report import atomic_path

    with atomic_path(path) as tmp:
        np.savez(tmp, **torch_named(result.params))


def _compare(args) -> int:
    from fnnet import report
    from fnnet.lessons import LESSONS, get_lesson

    ids = _lesson_ids(args.lesson)
    out_json = args.json and report.check_output_path(args.json, (".json",), "--json")
    plot = args.plot and report.check_output_path(args.plot, report.PLOT_FORMATS, "--plot")
    sizes = _given_sizes(args)
    if sizes and any(LESSONS[i].edition == "sine" for i in ids):
        if all(LESSONS[i].edition == "sine" for i in ids):
            raise _usage("the sine lessons fit sin(x) on fixed data; --batch/--d-in/--hidden/--d-out are for "
                         "the classic edition")
    if not math.isfinite(args.perturb):
        raise _usage(f"--perturb: expected a finite number, got {args.perturb}")
    from fnnet.parity.compare import check  # imports torch: after the cheap checks

    checks = []
    for lesson_id in ids:
        sine = LESSONS[lesson_id].edition == "sine"
        checks.append(check(lesson_id, steps=args.steps, seed=args.seed, sizes=None if sine else _sizes(args),
                            perturb=args.perturb, x64=args.x64, repeats=args.repeats))
        if not sys.stderr.isatty():
            continue
        print(f"compared {lesson_id}: {checks[-1].verdict}", file=sys.stderr)
    print(report.compare_table(checks))
    for c in checks:  # the sine lessons end as the tutorial does: the fitted polynomial, from both sides
        f32 = c.f32
        if f32.torch_params is not None and f32.lesson.startswith("sine_"):
            from fnnet.lessons.sine import result_line

            print(f"{f32.lesson:20}  pytorch  {result_line(f32.lesson, f32.torch_params)}")
            print(f"{'':20}  fnnet    {result_line(f32.lesson, f32.jax_params)}")
        if f32.exact_steps < f32.steps:
            print(f"{f32.lesson:20}  curves compared step by step over steps 0-{f32.exact_steps - 1}: a start moved by "
                  f"one rounding error alone moves the loss by 1e-3 at step {f32.horizon} (chaotic near the floor); "
                  f"after that the mean of the last {min(200, f32.steps)} losses differs by {f32.tail_diff:.1e}")
    if out_json:
        report.write_json(out_json, {"lessons": [c.record() for c in checks]})
        print(f"comparisons written to {out_json}")
    if plot:
        report.write_compare_plot(plot, checks)
        print(f"plot written to {plot}")
    failed = [c.f32.lesson for c in checks if not c.ok]
    if failed:
        print(f"fnnet compare: {', '.join(failed)} differ beyond tolerance", file=sys.stderr)
        return 1
    return 0


def _sweep(args) -> int:
    from fnnet import report
    from fnnet.lessons import get_lesson

    lesson = get_lesson(args.lesson)
    out_json = args.json and report.check_output_path(args.json, (".json",), "--json")
    plot = args.plot and report.check_output_path(args.plot, report.PLOT_FORMATS, "--plot")
    from fnnet.training.sweep import sweep

    result = sweep(lesson.id, args.lr, args.seeds, steps=args.steps, sizes=_given_sizes(args) or None,
                   optimizer=args.optimizer)
    runs = len(result.lrs) * len(result.seeds)
    print(f"{lesson.id}: {runs} runs of {result.config['steps']} steps in one program "
          f"(compile {result.compile_seconds:.2f} s, run {result.run_seconds:.2f} s)")
    print(report.sweep_table(result))
    if result.best_lr is None:
        print("every learning rate diverged for some seed; try smaller ones")
    if out_json:
        report.write_json(out_json, result.record())
        print(f"sweep written to {out_json}")
    if plot:
        report.write_sweep_plot(plot, result)
        print(f"plot written to {plot}")
    return 0


def _bench(args) -> int:
    from fnnet import report

    workloads = _name_list(args.workloads) if isinstance(args.workloads, str) else args.workloads
    impls = _name_list(args.impls) if isinstance(args.impls, str) else args.impls
    out_json = report.check_output_path(args.json, (".json",), "--json")
    plot = report.check_output_path(args.plot, report.PLOT_FORMATS, "--plot")
    from fnnet.cli.bench import run_bench

    doc = run_bench(workloads, impls, repeats=args.repeats, processes=not args.no_processes,
                    sweep=not args.no_sweep, log=lambda line: print(f"bench: {line}", file=sys.stderr))
    if args.targets:
        from fnnet.cli.bench import check_targets

        doc["targets"] = check_targets(doc)
    print(report.bench_tables(doc))
    report.write_json(out_json, doc)
    report.write_bench_plot(plot, doc)
    print(f"results written to {out_json} and {plot}")
    if args.strict and not doc["reliable"]:
        print("fnnet bench: machine busy, figures not reliable (--strict)", file=sys.stderr)
        return 1
    return 0


def _skip_numpy_lessons(ids: list[str], why: str) -> None:
    """Of several lessons, drop the NumPy ones (in place), each with a note saying ``why``; one lesson stays
    (asked for alone, it gets the one-line error that explains)."""
    from fnnet.lessons import LESSONS

    if len(ids) > 1:
        for numpy_lesson in [i for i in ids if LESSONS[i].backend == "numpy"]:
            ids.remove(numpy_lesson)
            print(f"note: lesson {numpy_lesson} skipped ({why})", file=sys.stderr)


def _checkpoint_folders(directory, ids: list[str], resume: bool):
    """Each lesson's checkpoint folder and whether it resumes (``check_run_folders``). With several processes
    process 0 owns the folders: it checks them, and the others learn from it which lessons resume."""
    import jax
    import numpy as np

    from fnnet.runtime.checkpoint import check_run_folders, run_folders
    from fnnet.runtime.placement import same_outcome, share_from_first

    if jax.process_count() == 1:
        return check_run_folders(directory, ids, resume)
    error, resumes = None, np.zeros(len(ids), np.int32)
    try:
        if jax.process_index() == 0:
            _, checked = check_run_folders(directory, ids, resume)
            resumes = np.array([checked[i] for i in ids], np.int32)
    except Exception as err:
        error = err
    same_outcome(error, "use the checkpoint folder")
    resumes = share_from_first(resumes)
    return run_folders(directory, ids), {i: bool(r) for i, r in zip(ids, resumes)}


def _usage(message: str):
    from fnnet.errors import ConfigError

    return ConfigError(message)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from fnnet.errors import ConfigError, DivergenceError, Interrupted, StorageError

    warnings.formatwarning = lambda message, *rest, **kw: f"fnnet: warning: {message}\n"
    try:
        if not getattr(args, "no_compile_cache", True):
            from fnnet.training.fit import enable_compilation_cache

            enable_compilation_cache()
        commands = {"lessons": lambda _: _lessons(), "train": _train, "compare": _compare, "sweep": _sweep,
                    "bench": _bench}
        return commands[args.command](args)
    except ConfigError as err:
        print(f"fnnet: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except DivergenceError as err:
        print(f"fnnet: error: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except StorageError as err:
        print(f"fnnet: error: {err}", file=sys.stderr)
        return EXIT_STORAGE
    except Interrupted as err:  # Ctrl-C or SIGTERM in a checkpointed run: saved at the step reached
        print(f"fnnet: {err}; resume with: {_resume_command(argv)}", file=sys.stderr)
        return 128 + err.signum
    except KeyboardInterrupt:
        print("fnnet: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        reason = _peer_lost(err)
        if reason is None:
            raise
        import jax

        print(f"fnnet: error: another process of this run stopped ({reason}); process {jax.process_index()} of "
              f"{jax.process_count()} stops too", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # JAX's error-polling thread may be about to log the same loss (a few lines of C++ log): once fnnet
        # has said it, nothing more goes to stderr
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        os._exit(EXIT_PEER_LOST)  # not a normal exit: JAX's shutdown barrier would wait for the dead peer, then abort


def _peer_lost(err) -> str | None:
    if "jax" not in sys.modules:
        return None
    from fnnet.runtime.placement import peer_lost

    return peer_lost(err)


def _resume_command(argv: list[str] | None) -> str:
    """The command line that resumes this one."""
    import shlex

    argv = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["fnnet", *argv, *([] if "--resume" in argv else ["--resume"])])
