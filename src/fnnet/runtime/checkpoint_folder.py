"""A checkpoint folder's layout: what fnnet writes there, and the checks made before a run may use it.

The folder belongs to one run and holds only what fnnet wrote: a folder per
saved step (``40/``, named by orbax), saves that never finished
(``40.orbax-checkpoint-tmp...``), damaged steps moved aside (``damaged-40/``)
and the writer's lock (``fnnet.runtime.folder_lock``). The checks here read the
disk and change nothing, so a bad folder is refused at once, not after hours of
training; missing parent folders are allowed (where they can be made) and made
only when the run opens its folder (``make_folder``, which says so in one line).
A path the system cannot look at (a name over 255 bytes) is one ``ConfigError``
line, never an ``OSError`` traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from pathlib import Path

from fnnet.errors import ConfigError
from fnnet.runtime.folder_lock import LOCK, holder, in_use

DAMAGED = "damaged-"  # prefix of a damaged step moved aside
_STEP = re.compile(r"[0-9]+")
_TMP = re.compile(r"[0-9]+\.orbax-checkpoint-tmp.*")  # orbax's name for a step being written
_ORBAX_MARK = "_CHECKPOINT_METADATA"  # orbax writes it into every step folder first


def survey(path: Path) -> dict[str, list]:
    """Sort a checkpoint folder's entries: ``steps`` (ints, sorted), ``tmp``, ``damaged``, ``foreign`` (names).

    A step is a real folder named by an integer that orbax started writing
    (it holds orbax's metadata file); a folder ``N.orbax-checkpoint-tmp...`` is
    a save that never finished; ``damaged-N`` is a step moved aside. Anything
    else, including a symbolic link or an empty ``99999/``, is foreign.

    Examples:
      >>> import tempfile
      >>> folder = Path(tempfile.mkdtemp())
      >>> (folder / "20.orbax-checkpoint-tmp-7").mkdir(); (folder / "notes.txt").write_text("mine")
      4
      >>> survey(folder)
      {'steps': [], 'tmp': ['20.orbax-checkpoint-tmp-7'], 'damaged': [], 'foreign': ['notes.txt']}
    """
    found: dict[str, list] = {"steps": [], "tmp": [], "damaged": [], "foreign": []}
    for entry in sorted(path.iterdir()) if path.is_dir() else []:
        name, real_dir = entry.name, entry.is_dir() and not entry.is_symlink()
        if name == LOCK and entry.is_file():
            continue
        if real_dir and _STEP.fullmatch(name) and (entry / _ORBAX_MARK).is_file():
            found["steps"].append(int(name))
        elif real_dir and _TMP.fullmatch(name):
            found["tmp"].append(name)
        elif real_dir and name.startswith(DAMAGED):
            found["damaged"].append(name)
        else:
            found["foreign"].append(name + ("/" if real_dir else " (a link)" if entry.is_symlink() else ""))
    found["steps"].sort()
    return found


def path_error(err: OSError, what: str) -> ConfigError:
    """The one line for a path the system would not even look at (a name over 255 bytes, a folder it may not
    search): ``what``, then the system's reason.

    Examples:
      >>> import errno
      >>> str(path_error(OSError(errno.ENAMETOOLONG, "File name too long"), "--save 'x.npz'"))
      "--save 'x.npz': File name too long (the system could not look at this path)"
    """
    return ConfigError(f"{what}: {err.strerror or err} (the system could not look at this path)")


def nearest_existing(path: Path) -> Path:
    """The nearest of ``path`` and its parents that exists (``.`` for a relative path that is all missing).

    Raises:
      OSError: the system cannot look at a part of it (a name over 255 bytes, no permission to search).

    Examples:
      >>> import tempfile
      >>> base = Path(tempfile.mkdtemp())
      >>> nearest_existing(base / "a" / "b") == base
      True
    """
    for candidate in (path, *path.parents):
        try:
            os.stat(candidate)
            return candidate
        except (FileNotFoundError, NotADirectoryError):  # missing, or under a file: look further up
            continue
    return Path(".")


def check_parents(path: Path, what: str) -> None:
    """ConfigError unless the missing folders above ``path`` can be made there: the nearest existing one is a
    folder. Nothing is made or changed; ``what`` starts the message (``--metrics 'out/m.json'``).

    Raises:
      OSError: the system cannot look at a part of the path (the caller words it, ``path_error``).
    """
    found = nearest_existing(path.parent)
    if not found.is_dir():
        raise ConfigError(f"{what}: {str(found)!r} is not a folder, so nothing can be made under it")


def make_folder(path: Path, what: str, *, parents_only: bool = False, shown: Path | None = None) -> list[Path]:
    """Make ``path`` (with ``parents_only``, only the folder that holds it) and the missing folders above it;
    return those made, outermost first. When folders above ``path`` were missing, say so on stderr in one line
    naming the innermost (the one that holds ``path``; in ``shown``'s spelling when given, the path as the user
    typed it), e.g. ``fnnet: made folder runs/ for the checkpoint folder runs/optim``.

    Raises:
      OSError: the system refused (the caller words it).

    Examples:
      >>> import contextlib, io, tempfile
      >>> base = Path(tempfile.mkdtemp())
      >>> with contextlib.redirect_stderr(io.StringIO()) as said:
      ...     made = make_folder(base / "a" / "b" / "m.json", "--metrics", parents_only=True)
      >>> [p.relative_to(base).as_posix() for p in made]
      ['a', 'a/b']
      >>> said.getvalue().strip() == f"fnnet: made folder {base}/a/b/ for --metrics"
      True
    """
    target = path.parent if parents_only else path
    missing = []
    for candidate in (target, *target.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    target.mkdir(parents=True, exist_ok=True)
    missing.reverse()
    if any(p != path for p in missing):  # the folder holding ``path`` was made
        print(f"fnnet: made folder {Path(shown or path).parent}/ for {what}", file=sys.stderr)
    return missing


def remove_empty(folders) -> None:
    """Remove those of ``folders`` (as ``make_folder`` returns them, outermost first) left empty, innermost first."""
    for folder in reversed(list(folders)):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _check_place(directory, example: str) -> Path:
    """``directory`` as a Path; ConfigError unless it names a folder that exists or can be made (its missing
    parents too: ``check_parents``), one line for a path the system cannot look at. Nothing is made."""
    if not str(directory).strip():
        raise ConfigError(f"checkpoint folder is an empty name; give a folder, e.g. --checkpoint-dir {example}")
    path = Path(directory).expanduser()
    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"checkpoint folder {str(path)!r} is a file; expected a folder")
        if not path.exists():
            check_parents(path, f"checkpoint folder {str(path)!r}")
    except OSError as err:
        raise path_error(err, f"checkpoint folder {str(path)!r}") from None
    return path


def check_folder(directory, resume: bool, *, locked: bool = False) -> Path:
    """Check a checkpoint folder argument without touching the disk; return it as a Path.

    Used before any training starts (also for every lesson of ``fnnet train
    all``), so a bad folder is refused at once, not after hours of work.

    Examples:
      >>> import tempfile
      >>> check_folder(Path(tempfile.mkdtemp()) / "runs", resume=False).name
      'runs'
    """
    path = _check_place(directory, "runs/nn")
    pid = None if locked else holder(path)  # ``locked``: this process holds the lock
    if pid:
        raise in_use(path, pid)
    try:
        found = survey(path)
    except OSError as err:
        raise path_error(err, f"checkpoint folder {str(path)!r}") from None
    if found["foreign"]:
        more = f" (and {len(found['foreign']) - 1} more)" if len(found["foreign"]) > 1 else ""
        raise ConfigError(f"checkpoint folder {str(path)!r} holds {found['foreign'][0]}{more}, which fnnet did not "
                          "write; give fnnet a new or empty folder of its own")
    if resume and not found["steps"]:
        why = ("does not exist" if not path.exists() else
               "holds only a save that never finished; start again without --resume" if found["tmp"] else
               "holds no checkpoint")
        raise ConfigError(f"nothing to resume: checkpoint folder {str(path)!r} {why}")
    if not resume and found["steps"]:
        raise ConfigError(f"checkpoint folder {str(path)!r} already holds a run (steps up to {found['steps'][-1]}); "
                          "resume it with --resume, or choose an empty folder")
    return path


def run_folders(directory, lessons: list[str]) -> dict[str, Path]:
    """Where each lesson of a run keeps its checkpoints: ``directory`` for one lesson, ``directory/LESSON``
    for several (nothing is checked or touched).

    Examples:
      >>> {k: str(v) for k, v in run_folders("runs", ["nn", "optim"]).items()}
      {'nn': 'runs/nn', 'optim': 'runs/optim'}
    """
    base = Path(directory).expanduser()
    return {lessons[0]: base} if len(lessons) == 1 else {lesson: base / lesson for lesson in lessons}


def check_run_folders(directory, lessons: list[str], resume: bool, *,
                      make: bool = True) -> tuple[dict[str, Path], dict[str, bool]]:
    """The checkpoint folder of each lesson, all checked before any trains, and whether each one resumes.

    One lesson uses ``directory`` itself; several use ``directory/LESSON``, and
    with ``make`` ``directory`` is made if missing (its missing parents too, said
    in one line). ``make=False`` (``fnnet train``) changes nothing on disk: each
    lesson's folder and those above it are made when the lesson opens it
    (``Checkpoints.open``), so a run refused before that leaves nothing behind.
    With ``resume``, a lesson whose folder holds no checkpoint yet (the run had
    not reached it) starts from step 0.
    """
    if len(lessons) == 1:
        return {lessons[0]: check_folder(directory, resume)}, {lessons[0]: resume}
    folders = run_folders(directory, lessons)
    base = _check_place(directory, "runs")
    try:
        resumes = {lesson: resume and bool(survey(folders[lesson])["steps"]) for lesson in lessons}
    except OSError as err:
        raise path_error(err, f"checkpoint folder {str(base)!r}") from None
    if resume and not any(resumes.values()):
        raise ConfigError(f"nothing to resume: no lesson's folder in {str(base)!r} holds a checkpoint")
    for lesson in lessons if base.is_dir() else []:  # a new folder: nothing in it to check yet
        check_folder(folders[lesson], resumes[lesson])
    if make:
        try:
            make_folder(base, f"the checkpoint folder {base}")
        except OSError as err:
            raise ConfigError(f"cannot write to checkpoint folder {str(base)!r} ({err.strerror or err})") from None
    return folders, resumes


def clear_unfinished(path: Path, step: int | None = None) -> None:
    """Remove the saves that never finished (only ``step``'s, when given); only the lock's holder may."""
    for name in survey(path)["tmp"]:
        if step is None:
            shutil.rmtree(path / name)
        elif name.split(".")[0] == str(step):
            shutil.rmtree(path / name, ignore_errors=True)


def move_aside(path: Path, step: int) -> str:
    """Rename step ``step``'s folder to ``damaged-STEP`` (``damaged-STEP-2`` ... when taken); return the name."""
    name, n = f"{DAMAGED}{step}", 1
    while (path / name).exists():
        n += 1
        name = f"{DAMAGED}{step}-{n}"
    os.rename(path / str(step), path / name)
    return name


def release(path: Path, lock, created: bool, made=()) -> None:
    """Let go of the folder's ``lock``; a folder this run made and left empty (it diverged at once) goes too,
    and so do the folders ``made`` above it for this run (``make_folder``) that it leaves empty."""
    empty = not any(e.name != LOCK for e in path.iterdir()) if path.is_dir() else False
    lock.release(remove=empty and created)
    if empty and created:
        with contextlib.suppress(OSError):
            path.rmdir()
        remove_empty(made)
