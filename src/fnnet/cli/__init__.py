"""The ``fnnet`` command: the parser, one small module per command, and ``main``, which maps errors to exit codes.

Mistakes in what the user typed print one line to stderr and exit 2 before any
file is written; a diverging run exits 3; a write the storage refuses (a full
disk, a read-only folder) exits 4; Ctrl-C or SIGTERM in a checkpointed run
saves, then exits 130 or 143; with several processes, the death of another
one exits 5 at once. Each is one line, mapped in ``main``.

The modules: ``parser`` (``build_parser``, a function per command; no JAX
import, so ``--help`` is quick), ``common`` (what several commands read from
their arguments), one per command (``lessons``, ``train``, ``compare``,
``sweep``, ``bench_cmd``: each has ``run(args) -> exit status``), and beside
them ``bench`` (the benchmark) and ``report`` (tables, metrics files, plots).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import warnings

from fnnet.cli.parser import EXIT_USAGE, build_parser

EXIT_DIVERGED = 3
EXIT_STORAGE = 4  # a write failed after training started (disk full, read-only); the last good files kept
EXIT_PEER_LOST = 5  # several processes: another one died; this one stops at once (no wait at JAX's shutdown)

COMMANDS = {"lessons": "fnnet.cli.lessons", "train": "fnnet.cli.train", "compare": "fnnet.cli.compare",
            "sweep": "fnnet.cli.sweep", "bench": "fnnet.cli.bench_cmd"}
"""Command name -> the module whose ``run(args)`` carries it out and returns the exit status."""

PROGRAM_GC_THRESHOLD = (20_000, 20, 20)
"""Python's garbage-collector thresholds in the ``fnnet`` program (Python's default: 700, 10, 10), see ``program``."""

__all__ = ["main", "program", "build_parser", "COMMANDS", "EXIT_USAGE", "EXIT_DIVERGED", "EXIT_STORAGE",
           "EXIT_PEER_LOST", "PROGRAM_GC_THRESHOLD"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    Examples:
      >>> main(["lessons"])  # doctest: +ELLIPSIS
      lesson                edition  model ...
      0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from fnnet.errors import ConfigError, DivergenceError, Interrupted, StorageError

    warnings.formatwarning = lambda message, *rest, **kw: f"fnnet: warning: {message}\n"
    try:
        return run_command(args)
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
        _exit_peer_lost(reason)


def program(argv: list[str] | None = None) -> int:
    """The ``fnnet`` program, as the console script and ``python -m fnnet`` run it: ``main`` in a process of its own.

    Such a process is short and makes most of its objects once, importing JAX, flax and optax (about 160,000
    that the collector tracks, kept to the end), and Python's garbage collector walked them again and again:
    at its default thresholds about 390 times during a ``fnnet train optim`` (0.2 to 0.3 s of CPU; at
    ``PROGRAM_GC_THRESHOLD``, about 13 times and 0.05 to 0.09 s), then once more as the interpreter shut down
    (0.35 to 0.6 s of the process's 1.6 to 2.1 s), which the ``gc.freeze`` when ``main`` returns spares: the
    objects are freed as before, just not searched for cycles. ``main`` called from your own Python leaves
    your process's collector as it is.
    """
    gc.set_threshold(*PROGRAM_GC_THRESHOLD)
    try:
        return main(argv)
    finally:
        gc.freeze()  # the process ends next


def run_command(args) -> int:
    """Carry out the parsed command (its module's ``run``), the compilation cache on unless told not to."""
    if not getattr(args, "no_compile_cache", True):
        from fnnet.training.core import enable_compilation_cache

        enable_compilation_cache()
    return importlib.import_module(COMMANDS[args.command]).run(args)


def _exit_peer_lost(reason: str):
    """Say that another process of the run stopped, then leave at once with ``EXIT_PEER_LOST``."""
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
