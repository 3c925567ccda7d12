"""The ``fnnet`` command's parser: one small function per subcommand, the argument types beside them.

It imports nothing heavy (``fnnet.lessons`` is light: no JAX), so ``fnnet --help``
and a mistyped flag answer at once. A usage mistake is one line on stderr and
exit status ``EXIT_USAGE``, never argparse's usage block. The lesson ids in the
help come from the lesson records (``fnnet.lessons.edition_ids``).

Examples:
  >>> args = build_parser().parse_args(["train", "nn", "--steps", "5"])
  >>> args.command, args.lesson, args.steps, args.seed, args.no_compile_cache
  ('train', 'nn', 5, 0, False)
  >>> build_parser().parse_args(["sweep", "nn", "--lr", "1e-4,1e-3"]).lr
  [0.0001, 0.001]
"""

from __future__ import annotations

import argparse
import math

from fnnet.lessons import LESSONS, edition_ids

EXIT_USAGE = 2
OPTIMIZER_CHOICES = ("sgd", "momentum", "adam", "rmsprop")
EDITION_METAVAR = "LESSON|classic|sine|all"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--seed` must never be read as `--seeds` (issue 14)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, no usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# ---------------------------------------------------------------- argument types


def _positive_int(text: str) -> int:
    """An integer above 0.

    Examples:
      >>> _positive_int("3")
      3
      >>> _positive_int("0")
      Traceback (most recent call last):
      ...
      argparse.ArgumentTypeError: expected a positive integer, got '0'
    """
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
    """A finite number above 0.

    Examples:
      >>> _positive_float("1e-4")
      0.0001
      >>> _positive_float("inf")
      Traceback (most recent call last):
      ...
      argparse.ArgumentTypeError: expected a finite positive number, got 'inf'
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
    return value


def _devices(text: str):
    return "all" if text == "all" else _positive_int(text)


def name_list(text: str) -> list[str]:
    """Comma-separated names, blanks dropped.

    Examples:
      >>> name_list("seed, wide,,")
      ['seed', 'wide']
    """
    return [part.strip() for part in text.split(",") if part.strip()]


def _lr_list(text: str) -> list[float]:
    return [_positive_float(part) for part in text.split(",")]


# ---------------------------------------------------------------- help text from the lesson records


def edition_help() -> str:
    """The help of a LESSON|classic|sine|all argument: each edition's lesson ids.

    Examples:
      >>> edition_help()[:52]
      'a lesson id, or an edition: classic (default: numpy,'
    """
    return ("a lesson id, or an edition: classic (default: " + ", ".join(edition_ids("classic")) + "), sine "
            "(today's pytorch.org edition, fitting sin(x): " + ", ".join(edition_ids("sine")) + ") or all (both)")


def sweep_lesson_help() -> str:
    """The help of ``fnnet sweep``'s LESSON: the lessons that run in JAX (a sweep is one vmapped program).

    Examples:
      >>> sweep_lesson_help()[:40]
      'a JAX lesson: tensors, autograd, custom_'
    """
    classic = [i for i in edition_ids("classic") if not LESSONS[i].in_numpy]
    sine_numpy = [i for i in edition_ids("sine") if LESSONS[i].in_numpy]
    return f"a JAX lesson: {', '.join(classic)}, or one of the sine edition's but {', '.join(sine_numpy)}"


# ---------------------------------------------------------------- the parser, a function per command


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command: ``fnnet [--version] COMMAND ...``."""
    from fnnet import __version__

    parser = _Parser(prog="fnnet", description="The 'Learning PyTorch with Examples' tutorial, the JAX way.")
    parser.add_argument("--version", action="version", version=f"fnnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("lessons", help="list the lessons")
    compiling = [_add_train(sub), _add_compare(sub), _add_sweep(sub)]
    _add_bench(sub)
    for command in compiling:
        command.add_argument("--no-compile-cache", action="store_true",
                             help="do not keep compiled programs on disk between runs")
    return parser


def _add_train(sub) -> argparse.ArgumentParser:
    train = sub.add_parser(
        "train",
        help="train one lesson or all of them",
        description="Train a lesson (default: all of them) and print a summary table.",
    )
    train.add_argument("lesson", nargs="?", default="classic", metavar=EDITION_METAVAR, help=edition_help())
    train.add_argument("--steps", type=_positive_int,
                       help="training steps (default: the lesson's, 500 classic, 2000 sine, 30000 sine_control_flow)")
    train.add_argument("--lr", type=_positive_float, help="learning rate (default: the lesson's)")
    train.add_argument("--optimizer", choices=OPTIMIZER_CHOICES,
                       help="optimizer (default: the lesson's); without --lr it runs at its own default "
                            "rate for the lesson (see fnnet.optimizers.DEFAULT_LRS), never another optimizer's")
    _add_run_options(train)
    train.add_argument("--log-every", type=_positive_int,
                       help="steps per compiled chunk (default: the lesson's print interval, 100; 2000 for "
                            "sine_control_flow)")
    train.add_argument("--device", choices=("cpu", "gpu", "tpu"), help="backend to run on (default: JAX's)")
    _add_train_files(train)
    _add_processes(train)
    _add_checkpoints(train)
    return train


def _add_train_files(train) -> None:
    """What ``fnnet train`` writes and reads: metrics, plot, weights, your data; and on how many devices."""
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


def _add_processes(train) -> None:
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


def _add_checkpoints(train) -> None:
    train.add_argument("--checkpoint-dir", metavar="DIR",
                       help="save checkpoints in DIR, made when the run opens it (with any missing parents, said "
                            "in one line); one sub-folder per lesson with 'all'. Nothing else may be written there")
    train.add_argument("--checkpoint-every", type=_positive_int, metavar="K",
                       help="steps between checkpoints (default: --log-every)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the newest good checkpoint in --checkpoint-dir")


def _add_compare(sub) -> argparse.ArgumentParser:
    compare = sub.add_parser(
        "compare",
        help="train lessons in PyTorch and in fnnet from the same start and compare",
        description=(
            "Run each lesson in PyTorch (the tutorial's code) and in fnnet from the same weights, data and "
            "depth schedule; print both losses, their worst relative difference, the step-0 gradient "
            "difference, ms/step and a verdict. Exit 1 if a lesson fails. Needs PyTorch."
        ),
    )
    compare.add_argument("lesson", nargs="?", default="classic", metavar=EDITION_METAVAR, help=edition_help())
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
    return compare


def _add_sweep(sub) -> argparse.ArgumentParser:
    sweep = sub.add_parser(
        "sweep",
        help="train every (learning rate, seed) pair of a lesson in one compiled program",
        description="Train LESSON for every learning rate and seed at once (jit of vmap over whole runs) "
                    "and print the final loss per learning rate.",
    )
    sweep.add_argument("lesson", metavar="LESSON", help=sweep_lesson_help())
    sweep.add_argument("--lr", type=_lr_list, required=True, metavar="A,B,...", help="learning rates, comma-separated")
    sweep.add_argument("--seeds", type=_positive_int, default=1, metavar="K", help="seeds 0..K-1 (default 1)")
    sweep.add_argument("--steps", type=_positive_int, help="steps of each run (default: the lesson's)")
    sweep.add_argument("--optimizer", choices=OPTIMIZER_CHOICES, help="optimizer (default: the lesson's)")
    _add_size_options(sweep)
    sweep.add_argument("--json", metavar="PATH", help="write every run's losses to PATH.json")
    sweep.add_argument("--plot", metavar="PATH", help="write all curves, coloured by learning rate, to PATH.png")
    return sweep


def _add_bench(sub) -> argparse.ArgumentParser:
    bench = sub.add_parser(
        "bench",
        help="time fnnet against PyTorch, torch.compile and NumPy, and against the machine's peak",
        description="Benchmark the seed workload (two-layer net, Adam) and grown ones: compile time apart; "
                    "every implementation, the matmul peak and the shape ceilings timed once per round, "
                    "interleaved; min, median and spread of the rounds. Needs PyTorch. Takes a few minutes.",
    )
    bench.add_argument("--workloads", type=name_list, default="seed,wide,large", metavar="A,B",
                       help="of: seed, wide, large, tiny (default seed,wide,large; tiny is a smoke test)")
    bench.add_argument("--impls", type=name_list, default="fnnet,jax-step,torch,torch.compile,numpy",
                       metavar="A,B", help="of: fnnet, jax-step, torch, torch.compile, numpy (default all)")
    bench.add_argument("--repeats", type=_positive_int, default=5, help="timed rounds (default 5)")
    bench.add_argument("--no-processes", action="store_true", help="skip the whole-process timings")
    bench.add_argument("--no-sweep", action="store_true", help="skip the 64-run sweep timings")
    bench.add_argument("--targets", action="store_true", help="also judge the results against the project's targets")
    bench.add_argument("--strict", action="store_true",
                       help="exit 1 when the machine was too busy for the figures to be reliable")
    bench.add_argument("--json", metavar="PATH", default="fnnet-bench.json", help="(default fnnet-bench.json)")
    bench.add_argument("--plot", metavar="PATH", default="fnnet-bench.png", help="(default fnnet-bench.png)")
    return bench


def _add_run_options(parser) -> None:
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    _add_size_options(parser)


def _add_size_options(parser) -> None:
    parser.add_argument("--batch", type=_positive_int, help="N, rows of data (default 64)")
    parser.add_argument("--d-in", type=_positive_int, help="D_in, input features (default 1000)")
    parser.add_argument("--hidden", type=_positive_int, help="H, hidden width (default 100)")
    parser.add_argument("--d-out", type=_positive_int, help="D_out, outputs (default 10)")
