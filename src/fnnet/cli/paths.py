"""Where a command writes, against what it reads: checked before anything runs, folders made when written.

Each output path alone is checked by ``report.check_output_path`` (its
extension; a folder that holds it exists or can be made; the system lets it be
written). Here the outputs are checked against each other and against the
inputs, by resolved paths (``os.path.samefile`` where both exist): an output
that is a ``--data`` file (or one of the files of a ``--data`` folder), another
output, or inside the checkpoint folder (the base folder of several lessons),
is refused in one line, so nothing the user has, and nothing fnnet must find
again on ``--resume``, is overwritten. The checks change nothing on disk: the
missing folders above an output are made when it is written (``make_parents``,
one line saying so).
"""

from __future__ import annotations

import os
from pathlib import Path

from fnnet.cli.common import usage
from fnnet.errors import StorageError
from fnnet.runtime.checkpoint_folder import make_folder, path_error


def data_files(data) -> list[Path]:
    """The files ``--data`` reads: the ``.npz`` file, or a folder's ``x.npy`` and ``y.npy``.

    Examples:
      >>> import tempfile
      >>> [p.name for p in data_files(tempfile.mkdtemp())], data_files("d.npz")
      (['x.npy', 'y.npy'], [PosixPath('d.npz')])
    """
    path = Path(data).expanduser()
    return [path / "x.npy", path / "y.npy"] if path.is_dir() else [path]


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except RuntimeError:  # a loop of symbolic links
        return Path(os.path.abspath(path))


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file: ``os.path.samefile`` where both exist (links, hard links), else equal
    resolved paths.

    Examples:
      >>> same_file(Path("runs/../m.json"), Path("m.json")), same_file(Path("a.json"), Path("b.json"))
      (True, False)
    """
    try:
        return os.path.samefile(a, b)
    except (FileNotFoundError, NotADirectoryError):
        return _resolved(a) == _resolved(b)


def inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies under it, once both are resolved.

    Examples:
      >>> inside(Path("ck/sub/../w.npz"), Path("./ck")), inside(Path("ck2/w.npz"), Path("ck"))
      (True, False)
    """
    path, folder = _resolved(path), _resolved(folder)
    return path == folder or folder in path.parents


def check_outputs(outputs: list[tuple[str, Path]], data=None, checkpoint_dir=None) -> None:
    """ConfigError (one line) for an output that is a ``--data`` file, another output, or inside the
    checkpoint folder (or holding it); ``outputs`` are ``(flag, path)`` pairs. Nothing is read or changed
    but the paths' names (and their links).

    Examples:
      >>> check_outputs([("--metrics", Path("m.json")), ("--plot", Path("p.png"))], checkpoint_dir="runs")
      >>> check_outputs([("--save", Path("runs/w.npz"))], checkpoint_dir="runs")
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: --save: 'runs/w.npz' is inside the checkpoint folder 'runs', which holds only what fnnet writes there; write it elsewhere
    """
    folder = None if checkpoint_dir is None else Path(checkpoint_dir).expanduser()
    try:
        inputs = [] if data is None else data_files(data)
    except OSError as err:
        raise path_error(err, f"--data {str(data)!r}") from None
    for i, (flag, path) in enumerate(outputs):
        try:
            _check_one(flag, Path(path), inputs, outputs[:i], folder)
        except OSError as err:
            raise path_error(err, f"{flag} {str(path)!r}") from None


def _check_one(flag: str, path: Path, inputs: list[Path], before: list, folder: Path | None) -> None:
    for source in inputs:
        if same_file(path, source):
            raise usage(f"{flag}: {str(path)!r} is the --data file {str(source)!r}; writing there would overwrite "
                        "your data; choose another path")
    for other_flag, other in before:
        if same_file(path, Path(other)):
            raise usage(f"{flag}: {str(path)!r} is the same file as {other_flag} {str(other)!r}; "
                        "give each output its own path")
    if folder is not None and inside(path, folder):
        raise usage(f"{flag}: {str(path)!r} is inside the checkpoint folder {str(folder)!r}, which holds only what "
                    "fnnet writes there; write it elsewhere")
    if folder is not None and inside(folder, path):
        raise usage(f"{flag}: the checkpoint folder {str(folder)!r} would be under {str(path)!r}, "
                    "which is to be a file; write it elsewhere")


def make_parents(path, what: str) -> None:
    """Make the missing folders that will hold output ``path`` and say so in one line
    (``fnnet: made folder out/ for --metrics``); a refusal is one line too (``StorageError``, exit 4: the run
    has trained by now, and the other files are written as far as they can be)."""
    path = Path(path)
    try:
        make_folder(path, what, parents_only=True)
    except OSError as err:
        raise StorageError(f"{what}: could not make the folder {str(path.parent)!r} for {str(path)!r} "
                           f"({err.strerror or err})") from None


__all__ = ["check_outputs", "make_parents", "same_file", "inside", "data_files"]
