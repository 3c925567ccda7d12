"""Execute the learner's notebooks in one Jupyter kernel per test worker.

Starting a kernel and importing PyTorch, JAX, flax and matplotlib in it costs
about six seconds of CPU; eighteen fresh kernels cost two minutes of a suite
that should take four. Here one kernel runs the notebooks one after another.
Before each notebook the kernel is put back as a fresh one would be: the
user's names are deleted (``%reset -f``), the working folder is the
notebook's, ``jax_enable_x64`` is off, PyTorch's default dtype is float32,
and no figure is open. (Random state is not reset: a fresh process seeds
PyTorch's generator and NumPy's at random, and the pages seed what they
compare.) What is still alive after the reset (the imported modules, their
caches) is then frozen (``gc.freeze``), so that Python's full garbage
collections, one or two in every ``%reset`` and more while a page runs, walk only
what the next notebook makes: unfrozen, they walked torch, JAX, flax and
matplotlib every time, 11 of the 84 seconds the eighteen notebooks took in one
kernel (measured with ``gc.callbacks``). The young generation is collected less
often too (the thresholds of the test workers, tests/conftest.py).

Each ``pytorch`` and ``jax`` cell (a lesson's two programs) runs as a program
on its own: in fresh globals, under ``__name__ == "__main__"``, so a program
that uses a name it does not define itself fails with ``NameError`` here as it
would in a file; its names then join the notebook's, as they would in Jupyter,
for the cells below it. What each program printed is returned, so the suite
checks that it trains without running it a second time.
"""

from __future__ import annotations

import atexit
import json
import re
from pathlib import Path

PROGRAM_TAGS = ("pytorch", "jax")
CELL_TIMEOUT = 300  # seconds, for any one cell

# Run before each notebook.
RESET = """
%reset -f
import os as _os, sys as _sys
_os.chdir({folder!r})
if "jax" in _sys.modules:
    _sys.modules["jax"].config.update("jax_enable_x64", False)
if "torch" in _sys.modules:
    _sys.modules["torch"].set_default_dtype(_sys.modules["torch"].float32)
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
del _os, _sys
import gc as _gc
_gc.freeze()
from fnnet.cli import PROGRAM_GC_THRESHOLD as _threshold
_gc.set_threshold(*_threshold)
del _gc, _threshold
"""

# Replaces a program cell's source: the program runs in globals of its own, then its names join the page's.
PROGRAM = """
_program = {{"__name__": "__main__", "__builtins__": __builtins__}}
exec(compile({source!r}, {filename!r}, "exec"), _program)
globals().update({{k: v for k, v in _program.items() if not k.startswith("__")}})
del _program
"""


ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CellFailed(AssertionError):
    """A notebook cell raised; the message names the notebook and the cell and holds the traceback."""


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def ipynb_code_cells(path: Path) -> list[tuple[list[str], str]]:
    """The ``.ipynb``'s code cells as (tags, source), read as plain JSON (``import nbformat`` costs seconds)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(tags(c), "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in cells if c["cell_type"] == "code"]


class SharedKernel:
    """One ``python3`` kernel that executes notebooks one after another (``run``)."""

    def __init__(self):
        self.km = self.kc = None

    def _start(self):
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3")
        atexit.register(self.close)

    def _execute(self, code: str, where: str = "") -> str:
        """Run ``code`` in the kernel; return what it printed to stdout, or raise ``CellFailed``."""
        printed = []

        def keep(msg):
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                printed.append(msg["content"]["text"])

        try:
            reply = self.kc.execute_interactive(code, timeout=CELL_TIMEOUT, output_hook=keep)
        except TimeoutError:  # still running, or the kernel died: the next notebook gets a new kernel
            alive = self.km.is_alive()
            self.close()
            raise CellFailed(f"{where or code[:80]!r} " + (f"did not finish in {CELL_TIMEOUT} s" if alive
                                                            else "killed the kernel")) from None
        content = reply["content"]
        if content["status"] != "ok":
            trace = ANSI.sub("", "\n".join(content.get("traceback", [])))
            raise CellFailed(f"{where or code[:80]!r} raised {content.get('ename')}: {content.get('evalue')}\n{trace}")
        return "".join(printed)

    def run(self, path: Path) -> dict[str, str]:
        """Execute every code cell of the ``.ipynb`` at ``path`` as a fresh kernel would, in order; return each
        program cell's stdout by tag. Raises ``CellFailed`` (naming the cell, with its traceback) when one fails.
        """
        if self.km is not None and not self.km.is_alive():
            self.close()
        if self.km is None:
            self._start()
        self._execute(RESET.format(folder=str(path.parent)), f"resetting the kernel before {path.name}")
        programs = {}
        for i, (cell_tags, source) in enumerate(ipynb_code_cells(path)):
            tag = next((t for t in cell_tags if t in PROGRAM_TAGS), None)
            where = f"{path.name}, code cell {i}" + (f" ({tag})" if tag else "")
            if tag:
                code = PROGRAM.format(source=source, filename=f"<{path.stem} {tag} cell>")
                programs[tag] = self._execute(code, where)
            else:
                self._execute(source, where)
        return programs

    def close(self):
        if self.km is not None:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
            self.km = self.kc = None
