"""Run the ``fnnet`` command with one fault installed: ``python tests/fault_launcher.py FAULT ARGV...``.

The tests' way to kill a run at an exact point, from test code: fnnet itself has no switch for it.
The launcher wraps the function where the fault belongs, then runs ``fnnet.cli.program(ARGV)`` as
``python -m fnnet ARGV`` does. FAULT is one of:

- ``before-save:STEP``: SIGKILL when the chunk ending at STEP ran and its save was asked for (nothing saved);
- ``during-save:STEP``: SIGKILL as soon as orbax has started writing STEP in its background thread (its
  folder exists);
- ``after-save:STEP``: SIGKILL once the checkpoint of STEP is complete;
- ``die-after-sync``: SIGKILL right after the first chunk's losses were read back from the other processes
  (several processes only: the sync of a global array).
"""

import os
import signal
import sys
import time

SAVE_POINTS = ("before-save", "during-save", "after-save")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _wait_for_folder(path, step: int, timeout: float = 60.0) -> None:
    """Until orbax's folder for ``step`` exists (its temporary name, or the final one if the write won).

    orbax makes the folder of an asynchronous save in its background thread (``AsyncOptions``'
    ``create_directories_asynchronously``, on by default), so right after ``save`` returns it may not exist yet.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (path / str(step)).exists() or any(path.glob(f"{step}.orbax-checkpoint-tmp*")):
            return
        time.sleep(0.001)


def _kill_around_save(point: str, step: int) -> None:
    from fnnet.runtime.checkpoint import Checkpoints

    save = Checkpoints.save

    def faulty_save(self, state, losses, config):
        here = int(state.step) == step
        if here and point == "before-save":
            _die()
        save(self, state, losses, config)
        if here and point == "during-save":
            _wait_for_folder(self.path, step)
        if here and point == "after-save":
            self.manager.wait_until_finished()
        if here:  # during-save: the write is in flight in orbax's background thread; after-save: it is complete
            _die()

    Checkpoints.save = faulty_save


def _kill_after_sync() -> None:
    from fnnet.training import loop

    sync = loop.host_value

    def faulty_sync(array):
        value = sync(array)
        if not getattr(array, "is_fully_addressable", True):  # a global array, read across processes
            _die()
        return value

    loop.host_value = faulty_sync  # the loop reads each chunk's losses through this name


def install(fault: str) -> None:
    """Install ``fault`` (see the module's docstring) in this process; SystemExit(2) for one it does not know."""
    point, _, step = fault.partition(":")
    if point in SAVE_POINTS and step.isdigit():
        _kill_around_save(point, int(step))
    elif fault == "die-after-sync":
        _kill_after_sync()
    else:
        print(f"fault_launcher: unknown fault {fault!r}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str]) -> int:
    install(argv[0])
    from fnnet.cli import program

    return program(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
