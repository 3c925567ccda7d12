"""``fnnet train``: check everything, train each lesson, then write the files and print the table.

Three steps, in this order so that a mistake costs nothing: ``make_plan`` checks every
argument, output path, data set and checkpoint folder before the first lesson
trains (a ``Plan``), and changes nothing on disk; ``train_all`` trains the
planned lessons; ``finish`` writes the metrics and the plot, then prints the
summary table (files first: a failed write must not follow a table that looks
like success). Missing folders are made when what they hold is first written,
each with one line (``fnnet: made folder out/ for --metrics``). With several
processes (``--coordinator`` ...), only process 0 prints.
"""

from __future__ import annotations

import contextlib
import sys
from typing import NamedTuple

from fnnet.cli.common import given_sizes, is_sine, lesson_ids, usage


class Plan(NamedTuple):
    """What ``fnnet train`` will do, every check passed."""

    ids: list[str]  # the lessons to train, in order
    joined: tuple | None  # (coordinator, processes, process id) of a several-process run, else None
    metrics: object  # the checked --metrics path, or None
    plot: object  # the checked --plot path, or None
    save: dict | None  # lesson id -> checked --save path
    sizes: dict  # the sizes typed (without --batch when --data is given: it is then the minibatch)
    data: tuple | None  # the user's (x, y), or None for each lesson's own
    batch_size: int | None  # the minibatch size with --data; None: every row every step
    local: bool  # each process holds only its own rows of --data
    folders: dict  # lesson id -> checkpoint folder (or None)
    resume: dict  # lesson id -> whether it resumes
    device: object  # the jax.Device of --device, or None

    @property
    def process(self) -> int:
        """This process's id (0 in a run of one process)."""
        return self.joined[2] if self.joined else 0

    @property
    def processes(self) -> int:
        """How many processes run this command."""
        return self.joined[1] if self.joined else 1


def run(args) -> int:
    """``fnnet train``: plan, train, finish; exit status 0 (the errors are ``main``'s to map)."""
    plan = make_plan(args)
    return finish(args, plan, train_all(args, plan))


# ---------------------------------------------------------------- checks, before anything trains


def make_plan(args) -> Plan:
    """Every check of the command line, in the order a user meets its errors; nothing trained or written."""
    import jax

    from fnnet import report
    from fnnet.runtime.distributed import initialize
    from fnnet.runtime.placement import resolve_device

    joined = _join(args)
    ids = lesson_ids(args.lesson)
    if args.optimizer not in (None, "sgd"):  # the NumPy lessons have only their hand-written SGD
        _skip_numpy_lessons(ids, f"it runs only SGD, not {args.optimizer}")
    metrics = args.metrics and report.check_output_path(args.metrics, report.METRICS_FORMATS, "--metrics")
    plot = args.plot and report.check_output_path(args.plot, report.PLOT_FORMATS, "--plot")
    if joined:
        initialize(*joined, timeout=args.init_timeout)  # before anything else touches a JAX backend
    device = resolve_device(args.device) if args.device else None
    several = bool(joined) and joined[1] > 1
    if several or (args.devices not in (None, 1) and len(jax.devices()) > 1):
        _skip_numpy_lessons(ids, "it runs in NumPy on one device")
    ids, sizes, data, batch_size, local = _user_data(args, ids, joined)
    save = args.save and _save_paths(args.save, ids)
    _check_outputs(args, metrics, plot, save)
    folders, resume = _checkpoints(args, ids, several)
    return Plan(ids, joined, metrics, plot, save, sizes, data, batch_size, local, folders, resume, device)


def _join(args):
    """The several-process settings (or None); another process than 0 writes only its own files and is quiet."""
    from fnnet.runtime.distributed import settings

    joined = settings(args.coordinator, args.num_processes, args.process_id)
    if joined:
        args.metrics = _for_process(args.metrics, joined[2])
        args.plot = _for_process(args.plot, joined[2])
        if joined[2] != 0:
            args.quiet = True
    return joined


def _for_process(path, process: int):
    """Process 0 writes PATH; another process writes only where PATH names it with {process}.

    Examples:
      >>> _for_process("m-{process}.json", 3), _for_process("m.json", 3), _for_process("m.json", 0)
      ('m-3.json', None, 'm.json')
    """
    if path is None:
        return None
    if "{process}" in path:
        return path.replace("{process}", str(process))
    return path if process == 0 else None


def _skip_numpy_lessons(ids: list[str], why: str) -> None:
    """Of several lessons, drop the NumPy ones (in place), each with a note saying ``why``; one lesson stays
    (asked for alone, it gets the one-line error that explains)."""
    from fnnet.lessons import LESSONS

    if len(ids) > 1:
        for numpy_lesson in [i for i in ids if LESSONS[i].in_numpy]:
            ids.remove(numpy_lesson)
            print(f"note: lesson {numpy_lesson} skipped ({why})", file=sys.stderr)


def _user_data(args, ids: list[str], joined):
    """``--data`` read and checked against the lessons: (ids, sizes, data, batch_size, local).

    With your data ``--batch`` is the minibatch size, and the sine lessons (which
    fit sin(x) on their own data) leave a run of several editions; ``fit`` checks
    the data and the sizes (one rule).
    """
    sizes = given_sizes(args)
    if args.data is None:
        return ids, sizes, None, None, False
    import numpy as np

    from fnnet.data import load_data, process_rows

    x, y = load_data(args.data)
    batch_size, sizes = args.batch, {k: v for k, v in sizes.items() if k != "batch"}
    local = bool(joined) and joined[1] > 1 and batch_size in (None, np.shape(x)[0])
    if local:  # full batch over several processes: this one reads and keeps only its own rows
        x, y = process_rows(x, y, joined[2], joined[1])
        batch_size = None
    ids = _without_sine(ids)
    if batch_size not in (None, np.shape(x)[0]):
        _skip_numpy_lessons(ids, "it trains on all rows every step")
    return ids, sizes, (x, y), batch_size, local


def _without_sine(ids: list[str]) -> list[str]:
    """The lessons that can train on the user's data: the sine ones take other shapes."""
    sine_ids = [i for i in ids if is_sine(i)]
    if len(ids) > 1 and sine_ids == ids:
        raise usage("--data trains several lessons on one data set; the sine lessons take different shapes "
                    "(x (rows, 1), or (rows, 3) for sine_nn/sine_optim): give one sine lesson")
    if sine_ids and len(ids) > len(sine_ids):  # your data has the classic shapes, not the sine lessons'
        print("note: the sine lessons skipped (they fit sin(x) on their own data)", file=sys.stderr)
        return [i for i in ids if i not in sine_ids]
    return ids


def _save_paths(path: str, ids: list[str]) -> dict:
    """Where ``--save`` writes each lesson's weights, checked before training."""
    from fnnet import report

    if len(ids) > 1 and "{lesson}" not in path:
        raise usage("--save with several lessons needs {lesson} in the path, e.g. --save 'weights-{lesson}.npz'")
    return {i: report.check_output_path(path.replace("{lesson}", i), (".npz",), "--save") for i in ids}


def _check_outputs(args, metrics, plot, save) -> None:
    """No output on a ``--data`` file, on another output, or inside the checkpoint folder (``cli.paths``)."""
    from fnnet.cli.paths import check_outputs

    outputs = [("--save", p) for p in (save or {}).values()]
    outputs += [(flag, p) for flag, p in (("--metrics", metrics), ("--plot", plot)) if p]
    check_outputs(outputs, args.data, args.checkpoint_dir)


def _checkpoints(args, ids: list[str], several: bool) -> tuple[dict, dict]:
    """Each lesson's checkpoint folder and whether it resumes; every folder checked before the first trains."""
    if args.checkpoint_dir is None and (args.resume or args.checkpoint_every):
        raise usage(f"{'--resume' if args.resume else '--checkpoint-every'} needs --checkpoint-dir")
    if several:  # the folder checks below are collectives: every process must take part
        from fnnet.runtime.placement import process_values

        if len(set(process_values(args.checkpoint_dir is not None).tolist())) > 1:
            raise usage("--checkpoint-dir was given to some processes only; give it to every process or to none")
    if args.checkpoint_dir is None:
        return {i: None for i in ids}, {i: args.resume for i in ids}
    return _checkpoint_folders(args.checkpoint_dir, ids, args.resume)  # (issue 14)


def _checkpoint_folders(directory, ids: list[str], resume: bool):
    """Each lesson's checkpoint folder and whether it resumes (``check_run_folders``). With several processes
    process 0 owns the folders: it checks them, and the others learn from it which lessons resume. Nothing is
    made here: each lesson's folder (and the missing ones above it) is made when the lesson opens it."""
    import jax
    import numpy as np

    from fnnet.runtime.checkpoint import check_run_folders, run_folders
    from fnnet.runtime.placement import same_outcome, share_from_first

    if jax.process_count() == 1:
        return check_run_folders(directory, ids, resume, make=False)
    error, resumes = None, np.zeros(len(ids), np.int32)
    try:
        if jax.process_index() == 0:
            _, checked = check_run_folders(directory, ids, resume, make=False)
            resumes = np.array([checked[i] for i in ids], np.int32)
    except Exception as err:
        error = err
    same_outcome(error, "use the checkpoint folder")
    resumes = share_from_first(resumes)
    return run_folders(directory, ids), {i: bool(r) for i, r in zip(ids, resumes)}


# ---------------------------------------------------------------- training


def train_all(args, plan: Plan) -> list:
    """Train every planned lesson in turn; the ``FitResult`` of each.

    When one fails, the metrics of those trained before it are still written (``_keep_metrics``).
    """
    import jax

    results = []
    with jax.default_device(plan.device) if plan.device else contextlib.nullcontext(), \
            _keep_metrics(plan.metrics, results):
        for lesson_id in plan.ids:
            results.append(train_one(args, plan, lesson_id))
    return results


def train_one(args, plan: Plan, lesson_id: str):
    """Train one lesson as planned; save its weights (``--save``) and say so on a stderr that is not a terminal."""
    from fnnet.training.fit import fit

    result = fit(
        lesson_id, steps=args.steps, lr=args.lr, optimizer=args.optimizer, seed=args.seed,
        sizes=_lesson_sizes(plan, lesson_id), log_every=args.log_every, progress=False if args.quiet else None,
        checkpoint_dir=plan.folders[lesson_id], checkpoint_every=args.checkpoint_every, resume=plan.resume[lesson_id],
        data=plan.data, batch_size=plan.batch_size, devices=args.devices, local_data=plan.local,
    )
    if plan.save and plan.process == 0:
        _save(plan.save[lesson_id], result)
    if not args.quiet and not sys.stderr.isatty():
        print(f"trained {lesson_id}: {len(result.losses)} steps, last loss {result.losses[-1]:.4g}", file=sys.stderr)
    return result


def _lesson_sizes(plan: Plan, lesson_id: str) -> dict | None:
    """The sizes for this lesson: those typed, except for a sine lesson in a run with classic ones."""
    if is_sine(lesson_id) and plan.sizes and not all(is_sine(i) for i in plan.ids):
        return None  # the sizes are for the classic lessons of the run
    return plan.sizes or None


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

            from fnnet.cli.paths import make_parents

            done = f"the metrics of the {len(results)} lesson(s) trained before it"
            try:
                make_parents(path, "--metrics")
                report.write_metrics(path, results)
                note = f"; {done} were written to {path}"
            except StorageError as failed:
                note = f"; {done} could not be written either ({failed})"
            err.args = (f"{err.args[0] if err.args else err}{note}", *err.args[1:])
        raise


def _save(path, result) -> None:
    """The trained weights as ``.npz``, under PyTorch's names and layout (``fnnet.compare.torch_named``)."""
    import numpy as np

    from fnnet.cli.paths import make_parents
    from fnnet.cli.report import atomic_path
    from fnnet.parity.compare import torch_named

    make_parents(path, "--save")
    with atomic_path(path) as tmp:
        np.savez(tmp, **torch_named(result.params))


# ---------------------------------------------------------------- outputs


def finish(args, plan: Plan, results: list) -> int:
    """Write ``--metrics`` and ``--plot``, then (process 0 only) print the results and where the files went."""
    from fnnet import report
    from fnnet.cli.paths import make_parents

    if plan.metrics:  # files before the table: a failed write must not follow a table that looks like success
        make_parents(plan.metrics, "--metrics")
        report.write_metrics(plan.metrics, results)
    if plan.plot:
        make_parents(plan.plot, "--plot")
        report.write_plot(plan.plot, results)
    if plan.process != 0:
        return 0
    print_results(results, quiet=args.quiet)
    for what, path in (("metrics", plan.metrics), ("plot", plan.plot)):
        if path:
            print(f"{what} written to {path}")
    if plan.save:
        print(f"weights written to {', '.join(str(p) for p in plan.save.values())}")
    return 0


def print_results(results: list, *, quiet: bool) -> None:
    """The summary table; a sine lesson also ends as the tutorial does (its log lines when alone, its polynomial)."""
    from fnnet import report
    from fnnet.lessons import LESSONS

    if len(results) == 1 and is_sine(results[0].lesson) and not quiet:
        from fnnet.lessons.sine import printed_losses

        for t, loss in printed_losses(results[0].losses, LESSONS[results[0].lesson].print_every):
            print(t, loss)  # the tutorial's own log lines
    print(report.summary_table(results))
    for r in results:
        if is_sine(r.lesson):
            from fnnet.lessons.sine import result_line

            print(f"{r.lesson}: {result_line(r.lesson, r.params)}")
