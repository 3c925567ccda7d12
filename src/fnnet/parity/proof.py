"""The notebooks' proof: run the two program cells a page shows, from one start, and compare them.

Each lesson notebook (``notebooks/NN_name.md``) has a cell tagged ``pytorch``
(the tutorial's code) and one tagged ``jax`` (plain JAX). Both define
``train(...)`` and call it under ``if __name__ == "__main__":``. ``program``
loads a tagged cell as a module, so its definitions run and its own training
run does not; ``prove`` then draws the start the PyTorch cell draws (under a
seed), hands the very same numbers to the JAX cell, runs both ``train``
functions and returns a ``Proof`` of the two curves.

The cells' contract, by kind of lesson (its record's ``cell``):

- ``weights`` (classic numpy .. custom_function): ``x, y, w1, w2`` and
  ``train(w1, w2, x, y, steps) -> (w1, w2, losses)``.
- ``scalars`` (sine_numpy .. sine_custom_function): ``x, y, a, b, c, d`` and
  ``train(a, b, c, d, x, y, steps) -> (a, b, c, d, losses)``.
- ``model`` (nn, optim, custom_module and their sine twins): ``x, y, model``
  (sine_nn / sine_optim also ``xx``, the (2000, 3) features the model takes)
  and ``train(model, x_or_xx, y, steps) -> losses``.
- ``dynamic`` (control_flow, sine_control_flow): ``train(model, x, y, schedule)``,
  ``schedule[t]`` the step's depth (0..3) or number of extra terms (0..2).

The verdict is ``fnnet.parity.engine``'s, the rule ``fnnet.compare`` applies, with the first updates always
compared in float64 (``UPDATE_RTOL``).

Needs PyTorch, matplotlib and jupytext (the ``test`` or ``notebooks`` extra).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import ast
import importlib.util
import io
import json
import random
import tempfile
import time
import types
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fnnet.lessons import JAX, NUMPY, Lesson, get_lesson
from fnnet.parity.engine import TAIL, UPDATE_RTOL, Check, Comparison, first_update, horizon, settle, torch_name

TAGS = ("pytorch", "jax")
WEIGHT_NAMES = {"weights": ("w1", "w2"), "scalars": ("a", "b", "c", "d")}  # what train takes and returns, in order


def lesson_kind(lesson: str) -> str:
    """How a lesson's cells take their start: ``weights``, ``scalars``, ``model`` or ``dynamic`` (its record's ``cell``).

    Examples:
      >>> [lesson_kind(k) for k in ("numpy", "sine_autograd", "sine_optim", "sine_control_flow")]
      ['weights', 'scalars', 'model', 'dynamic']
    """
    return get_lesson(lesson).cell


def find_notebook(name: str, folder: str | Path | None = None) -> Path:
    """The MyST source ``name.md``: in ``folder``, else here or in ``./notebooks`` (from the repository root)."""
    candidates = [Path(folder)] if folder is not None else [Path.cwd(), Path.cwd() / "notebooks"]
    for where in candidates:
        path = where / f"{name}.md"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no {name}.md in {', '.join(str(c) for c in candidates)}")


def code_cells(text: str) -> list[tuple[list[str], str]]:
    """``(tags, source)`` of every code cell of a MyST notebook's text, as jupytext reads them.

    Read here rather than through jupytext, whose import (jsonschema's format
    checkers build dozens of parsers) costs seconds in every kernel that calls
    ``prove``; the tests check that both read every notebook alike.

    Examples:
      >>> code_cells("```{code-cell} ipython3\\n:tags: [jax, demo]\\n\\nx = 1\\ny = 2\\n```\\n")
      [(['jax', 'demo'], 'x = 1\\ny = 2')]
    """
    lines, cells, i = text.splitlines(), [], 0
    while i < len(lines):
        if not lines[i].startswith("```{code-cell}"):
            i += 1
            continue
        i, tags = i + 1, []
        while i < len(lines) and lines[i].startswith(":"):  # options, e.g. ":tags: [jax]"
            name, _, value = lines[i][1:].partition(":")
            if name.strip() == "tags":
                tags = [t.strip() for t in value.strip().strip("[]").split(",") if t.strip()]
            i += 1
        if i < len(lines) and not lines[i].strip():  # the blank line between options (or header) and code
            i += 1
        end = i
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        cells.append((tags, "\n".join(lines[i:end])))
        i = end + 1
    return cells


def cell_source(path: str | Path, tag: str) -> str:
    """The source of the one code cell of a MyST notebook whose metadata tags include ``tag``.

    Examples:
      >>> import pathlib, tempfile
      >>> md = pathlib.Path(tempfile.mkdtemp()) / "demo.md"
      >>> _ = md.write_text("```{code-cell} ipython3\\n:tags: [jax]\\n\\nx = 1\\n```\\n")
      >>> cell_source(md, "jax")
      'x = 1'
    """
    found = [source for tags, source in code_cells(Path(path).read_text(encoding="utf-8")) if tag in tags]
    if len(found) != 1:
        raise ValueError(f"{path}: expected one code cell tagged {tag!r}, found {len(found)}")
    return found[0]


def marker(name: str, tag: str) -> str:
    """The comment that names a program cell in a kernel's history: ``# fnnet: 05_nn jax``.

    Page-specific, since one kernel may run several pages; the first line of
    each program cell of a lesson page.
    """
    return f"# fnnet: {name} {tag}"


class CellSource(NamedTuple):
    """A program cell's source and where it was read."""

    text: str
    where: str  # "this kernel's last run", "NN_name.md" or "NN_name.ipynb"


def _from_history(name: str, tag: str) -> str | None:
    """The newest input of this IPython kernel that ran the cell marked ``marker(name, tag)``, or None.

    A cell run through a wrapper (``exec(compile(SOURCE, ...))``, as the test
    suite's kernel runs programs) is found inside it: the string holding the marker.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    history = getattr(shell, "user_ns", {}).get("In") if shell is not None else None
    needle = marker(name, tag)
    for entry in reversed(history or []):
        if needle not in entry:
            continue
        try:
            strings = [n.value for n in ast.walk(ast.parse(entry)) if isinstance(n, ast.Constant)
                       and isinstance(n.value, str) and needle in n.value]
        except SyntaxError:  # IPython magics: the entry is the cell as typed
            strings = []
        found = strings[0] if strings and not entry.lstrip().startswith(needle) else entry
        if found.lstrip().startswith(needle):
            return found
    return None


def _ipynb_cell(path: Path, tag: str) -> str:
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if c.get("cell_type") == "code" and tag in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ProofFailed(f"{path.name}: expected one code cell tagged {tag!r}, found {len(cells)}; tag the "
                          f"program cell (cell metadata \"tags\": [\"{tag}\"])")
    source = cells[0]["source"]
    return "".join(source) if isinstance(source, list) else source


def cell_program(name: str, tag: str, folder: str | Path | None = None) -> CellSource:
    """The ``tag`` program cell of page ``name`` as the learner last ran it.

    In order: this kernel's last run of the cell that starts with
    ``marker(name, tag)`` (an edited cell counts once it is re-run, not
    before); else the page's ``name.md``; else the ``name.ipynb`` itself (a
    notebook downloaded alone), each looked for here and in ``./notebooks``.
    With ``folder`` given, only that folder's files are read.

    Examples:
      >>> import pathlib, tempfile
      >>> folder = pathlib.Path(tempfile.mkdtemp())
      >>> _ = (folder / "demo.md").write_text("```{code-cell} ipython3\\n:tags: [jax]\\n\\nx = 1\\n```\\n")
      >>> cell_program("demo", "jax", folder)
      CellSource(text='x = 1', where='demo.md')
    """
    text = _from_history(name, tag) if folder is None else None  # a folder given: read its files
    if text is not None:
        return CellSource(text, "this kernel's last run")
    candidates = [Path(folder)] if folder is not None else [Path.cwd(), Path.cwd() / "notebooks"]
    for where in candidates:
        if (where / f"{name}.md").is_file():
            return CellSource(cell_source(where / f"{name}.md", tag), f"{name}.md")
        if (where / f"{name}.ipynb").is_file():
            return CellSource(_ipynb_cell(where / f"{name}.ipynb", tag), f"{name}.ipynb")
    raise ProofFailed(f"no run of the cell marked {marker(name, tag)!r} in this kernel, and no {name}.md or "
                      f"{name}.ipynb in {', '.join(str(c) for c in candidates)}: run the page's {tag} cell first")


def program(name: str, tag: str, folder: str | Path | None = None) -> types.ModuleType:
    """Load the ``tag`` cell of notebook ``name`` (``cell_program``: as last run) as a module named ``{name}_{tag}``.

    The cell's text is written to a file and imported, so its tracebacks show
    its lines; being imported, its ``if __name__ == "__main__":`` part does not
    run. A cell that fails to load is one ``ProofFailed`` line naming it and its error.
    """
    source = cell_program(name, tag, folder)
    module_name = f"{name}_{tag}"
    path = Path(tempfile.mkdtemp(prefix="fnnet-cell-")) / f"{module_name}.py"
    path.write_text(source.text + "\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise ProofFailed(f"{name}: the {tag} cell ({source.where}) failed to run: {type(err).__name__}: {first}") from None
    module.__fnnet_source__ = source.where
    return module


# ---------------------------------------------------------------- one side's run, from a given start


def _torch_named_parameters(model) -> dict[str, np.ndarray]:
    return {name: p.detach().cpu().numpy().astype(np.float64) for name, p in model.named_parameters()}


@dataclasses.dataclass
class _Side:
    """How to copy a start, call ``train`` and read the weights back, for one cell."""

    module: types.ModuleType
    kind: str  # "weights" (w1, w2), "scalars" (a, b, c, d), "model", or "dynamic" (a model and a schedule)
    framework: str  # NUMPY, "torch" or JAX

    def run(self, start, x, y, steps: int, depths=None):
        """Train a copy of ``start`` for ``steps`` steps; returns (weights by torch name, losses)."""
        with contextlib.redirect_stdout(io.StringIO()):  # the cells print every 100 steps
            if self.kind in WEIGHT_NAMES:
                *trained, losses = self.module.train(*self._copy(start), x, y, steps)
                weights = {k: _np(w) for k, w in zip(WEIGHT_NAMES[self.kind], trained, strict=True)}
            else:
                model = self._copy(start)
                schedule = depths[:steps] if self.kind == "dynamic" else steps
                losses = self.module.train(model, x, y, schedule)
                weights = self._weights(model)
        return weights, np.asarray([float(v) for v in losses])

    def run_from(self, args: CellArgs, steps: int):
        """``run`` from a cell's arguments (``cell_args``)."""
        return self.run(args.start, args.x, args.y, steps, args.depths)

    def _copy(self, start):
        if self.kind in WEIGHT_NAMES:
            if self.framework == "torch":
                return tuple(w.detach().clone().requires_grad_(w.requires_grad) for w in start)
            return tuple(w.copy() if isinstance(w, np.ndarray) else w for w in start)
        if self.framework == "torch":
            return copy.deepcopy(start)
        from flax import nnx

        return nnx.clone(start)

    def _weights(self, model) -> dict[str, np.ndarray]:
        if self.framework == "torch":
            return _torch_named_parameters(model)
        from flax import nnx

        from fnnet.parity.engine import torch_named

        return {k: v.astype(np.float64) for k, v in torch_named(nnx.to_pure_dict(nnx.state(model, nnx.Param))).items()}


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _jax_model_with(module, params, dtype, torch_model=None):
    """A clone of the JAX cell's ``model`` holding ``params`` (fnnet's structure, from ``from_torch``).

    A cell whose model nests its parameters differently from fnnet's (say a
    bare ``nnx.Linear(3, 1)`` where fnnet keeps ``nnx.Sequential``) gets them by
    torch name instead: each ``nnx.Param`` takes the ``torch_model`` parameter
    whose name ends with its own (``kernel`` read as ``weight``, transposed).
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    model = nnx.clone(module.model)
    state = nnx.state(model, nnx.Param)
    try:
        nnx.replace_by_pure_dict(state, jax.tree.map(lambda a: jnp.asarray(np.asarray(a, dtype)), params))
    except (KeyError, ValueError, TypeError):
        if torch_model is None:
            raise
        named = _torch_named_parameters(torch_model)
        pure = nnx.to_pure_dict(state)

        def take(path, leaf):
            name, transpose = torch_name(path)
            found = [k for k in named if k == name or k.endswith("." + name)]
            if len(found) != 1:
                raise ValueError(f"the JAX cell's parameter {name!r} matches torch's {found or 'none'} "
                                 f"among {sorted(named)}") from None
            value = named[found[0]].T if transpose else named[found[0]]
            return jnp.asarray(value.reshape(np.shape(leaf)).astype(dtype))

        nnx.replace_by_pure_dict(state, jax.tree_util.tree_map_with_path(take, pure))
    nnx.update(model, state)
    return model


# ---------------------------------------------------------------- the start both cells take


class Start(NamedTuple):
    """What the PyTorch cell drew when it was loaded: the start every side copies, and the schedule."""

    lesson: Lesson
    weights: Any  # the cell's (w1, w2) or (a, b, c, d), or its torch ``model``
    x: np.ndarray  # float64 copy of the cell's data: its ``xx`` (the sine features) when it has one, else ``x``
    y: np.ndarray  # float64, in the shape the cell uses
    depths: list | None  # a DynamicNet lesson's per-step draw (Python ints); None for the others


class CellArgs(NamedTuple):
    """One cell's ``train`` arguments: its start, data and schedule, in its framework and dtype."""

    start: Any
    x: Any
    y: Any
    depths: list | None


def load_cells(name: str, lesson: str, *, seed: int = 0, steps: int = 500,
               folder: str | Path | None = None) -> tuple[Start, types.ModuleType, types.ModuleType]:
    """Load notebook ``name``'s ``pytorch`` and ``jax`` cells under ``seed``; returns the PyTorch cell's start and both.

    The PyTorch cell is loaded under ``torch.manual_seed(seed)`` (and NumPy's
    and Python's seeds), so its module-level draws (data, weights or model) are
    the start. A DynamicNet lesson's schedule is drawn with ``random.randint``
    per step (0..3 layers reused, or 0..2 extra terms: its record's ``max_draw``).
    """
    import torch

    info = get_lesson(lesson)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    tp, jp = program(name, "pytorch", folder), program(name, "jax", folder)
    depths = [random.randint(0, info.max_draw) for _ in range(steps)] if info.cell == "dynamic" else None
    weights = tuple(getattr(tp, k) for k in WEIGHT_NAMES[info.cell]) if info.cell in WEIGHT_NAMES else tp.model
    x, y = _np(tp.xx if hasattr(tp, "xx") else tp.x), _np(tp.y)  # float64 copies of the start's data
    return Start(info, weights, x, y, depths), tp, jp


def cell_sides(start: Start, torch_cell: types.ModuleType, jax_cell: types.ModuleType) -> tuple[_Side, _Side]:
    """The two cells as sides: the PyTorch (or NumPy) cell, then the JAX cell."""
    kind = start.lesson.cell
    return _Side(torch_cell, kind, NUMPY if start.lesson.in_numpy else "torch"), _Side(jax_cell, kind, JAX)


def cell_args(start: Start, side: _Side, wide: bool) -> CellArgs:
    """``side``'s arguments from ``start``: in float64 (``wide``) or the cells' float32 (NumPy cells: float64 always).

    The JAX cell gets the same numbers: ``w1, w2`` or ``a, b, c, d`` as arrays,
    or its own ``model`` with the torch weights loaded (``fnnet.compare.from_torch``).
    """
    import jax.numpy as jnp

    np_dtype = np.float64 if wide or start.lesson.in_numpy else np.float32
    kind = start.lesson.cell
    if side.framework == JAX:
        if kind in WEIGHT_NAMES:
            weights = tuple(jnp.asarray(_np(w).astype(np_dtype)) for w in start.weights)
        else:
            from fnnet.parity.compare import from_torch

            weights = _jax_model_with(side.module, from_torch(start.lesson.id, start.weights), np_dtype, start.weights)
        return CellArgs(weights, *(jnp.asarray(a.astype(np_dtype)) for a in (start.x, start.y)), start.depths)
    if side.framework == NUMPY:
        weights = tuple(np_dtype(_np(w)) if kind == "scalars" else w.astype(np_dtype) for w in start.weights)
        return CellArgs(weights, start.x.astype(np_dtype), start.y.astype(np_dtype), start.depths)
    import torch

    torch_dtype = torch.float64 if np_dtype == np.float64 else torch.float32
    if kind in WEIGHT_NAMES:
        weights = tuple(w.detach().to(torch_dtype).requires_grad_(w.requires_grad) for w in start.weights)
    else:
        weights = copy.deepcopy(start.weights).to(torch_dtype)
    return CellArgs(weights, *(torch.from_numpy(a.astype(np_dtype)) for a in (start.x, start.y)), start.depths)


# ---------------------------------------------------------------- the proof


@dataclasses.dataclass(frozen=True)
class Proof:
    """The two cells of a lesson page, run from one start."""

    notebook: str
    update_diff: float  # worst relative difference of the first updates, both sides in float64
    f32: Comparison  # the float32 curves (the cells' own precision), with the float64 first updates
    f64: Comparison | None  # the same in float64, run when the float32 curves drifted apart
    depths: np.ndarray | None  # the depth schedule both control_flow cells ran
    sources: tuple[str, str] = ("", "")  # where each cell's program was read (``CellSource.where``)

    @property
    def check(self) -> Check:
        """The verdict by ``fnnet.parity.engine``'s rule (the first updates held to ``UPDATE_RTOL``)."""
        return Check(self.f32, self.f64)

    @property
    def ok(self) -> bool:
        return self.check.ok

    @property
    def verdict(self) -> str:
        return self.check.verdict


def first_updates(sides: tuple[_Side, _Side], start: Start) -> tuple[dict, dict]:
    """Each side's first update from ``start`` over the lesson's rate, both in float64, by torch name.

    ``update / lr`` is the step-0 gradient for SGD and momentum; for Adam it is
    ``g / (|g| + eps)``. Float64, so that ``before - after`` loses nothing to rounding.
    """
    import jax

    updates = []
    with jax.enable_x64(True):
        for side in sides:
            args = cell_args(start, side, wide=True)
            before, _ = side.run_from(args, 0)
            after, _ = side.run_from(args, 1)
            updates.append(first_update(before, after, start.lesson.lr))
    missing = [k for k in updates[0] if k not in updates[1]]
    if missing:  # e.g. a plain jax.Array attribute where the PyTorch cell has an nn.Parameter
        raise ProofFailed(f"the jax cell's model has no parameter {missing[0]!r} (an nnx.Param) where the pytorch "
                          f"cell's has one; its parameters are {', '.join(sorted(updates[1])) or 'none'}")
    return updates[0], {k: updates[1][k] for k in updates[0]}


def cell_curves(sides: tuple[_Side, _Side], start: Start, steps: int, updates: tuple[dict, dict], *,
                wide: bool = False, seed: int = 0) -> Comparison:
    """Both cells' loss curves over ``steps`` steps, timed, in float64 (``wide``) or float32, with ``updates``.

    The JAX step is compiled by a one-step run first, so compilation is not in
    its time. A chaotic lesson's predictability horizon is measured on the JAX cell.
    """
    import jax
    import torch

    from fnnet.data import Sizes

    lesson = start.lesson
    dtype = "float64" if wide or lesson.in_numpy else "float32"
    torch_side, jax_side = sides
    with jax.enable_x64(wide or lesson.in_numpy):
        t_args, j_args = cell_args(start, torch_side, wide), cell_args(start, jax_side, wide)
        jax_side.run_from(j_args, 1)  # compiles the JAX step for this dtype
        (_, t_losses), t_seconds = _timed(lambda: torch_side.run_from(t_args, steps))
        (_, j_losses), j_seconds = _timed(lambda: jax_side.run_from(j_args, steps))
        chaos = _cell_horizon(jax_side, j_args, j_losses, steps, dtype) if lesson.chaotic else None
    sizes = None if lesson.edition == "sine" else Sizes(*start.x.shape, _hidden(start.weights, lesson.cell),
                                                          start.y.shape[1])
    return Comparison(lesson.id, steps, seed, sizes, t_losses, j_losses, *updates, t_seconds, j_seconds, 0.0,
                      torch.get_num_threads(), dtype, horizon=chaos, grads_dtype="float64")


def _timed(run):
    clock = time.perf_counter()
    result = run()
    return result, time.perf_counter() - clock


def _cell_horizon(jax_side: _Side, j_args: CellArgs, j_losses: np.ndarray, steps: int, dtype: str) -> int | None:
    """The first step where the JAX cell, its start scaled by 1 +- eps, leaves its own curve by LOSS_RTOL."""
    def run_from(factor: float) -> np.ndarray:
        moved = j_args._replace(start=_scaled(j_args.start, factor, jax_side.kind, dtype))
        return jax_side.run_from(moved, steps)[1]

    return horizon(j_losses, run_from, dtype)


def prove(name: str, lesson: str, *, steps: int = 500, seed: int = 0, folder: str | Path | None = None,
          check: bool = True) -> Proof:
    """Run notebook ``name``'s ``pytorch`` and ``jax`` cells from the PyTorch cell's start and compare.

    The PyTorch cell is loaded under ``torch.manual_seed(seed)`` (and NumPy's
    and Python's seeds), so its module-level draws (data, weights or model) are
    the start (``load_cells``). The JAX cell gets the same numbers: ``w1, w2`` or ``a, b, c, d``
    as arrays, or its own ``model`` with the torch weights loaded
    (``fnnet.compare.from_torch``). The data is the PyTorch cell's ``xx`` (the
    sine features) when it has one, else its ``x``, and its ``y``, in the shapes
    that cell uses; a control-flow lesson's schedule is drawn with
    ``random.randint`` per step (0..3 layers reused, or 0..2 extra terms).

    Each side first takes one step in float64 from that start: the two first
    updates are compared (``first_updates``), in float64 so that the
    subtraction ``before - after`` loses nothing to rounding. Then each side
    trains ``steps`` steps in float32, as the cells do: both loss curves are
    compared and timed (``cell_curves``). The verdict is ``fnnet.parity.engine``'s, as
    ``fnnet.compare.check``'s: float32 curves that drift apart are run
    again in float64 on both sides; a chaotic lesson (``sine_optim``) is compared step by step only up to its
    predictability horizon, measured on the JAX cell as ``fnnet.compare`` does.

    Raises ``ProofFailed`` (its message holds ``proof_lines``) when the
    verdict is not ok, so an executed page asserts its own parity; with
    ``check=False`` the failing ``Proof`` is returned instead.
    """
    start, torch_cell, jax_cell = load_cells(name, lesson, seed=seed, steps=steps, folder=folder)
    sides = cell_sides(start, torch_cell, jax_cell)
    updates = first_updates(sides, start)
    verdict = settle(lambda wide: cell_curves(sides, start, steps, updates, wide=wide, seed=seed))
    depths = None if start.depths is None else np.asarray(start.depths)
    sources = tuple(getattr(cell, "__fnnet_source__", "") for cell in (torch_cell, jax_cell))
    proof = Proof(name, verdict.f32.grad_diff, verdict.f32, verdict.f64, depths, sources)
    if check and not proof.ok:  # a page whose two programs disagree must not execute cleanly (the suite runs them)
        raise ProofFailed(f"{name}: the pytorch and jax cells disagree\n{proof_lines(proof)}")
    return proof


class ProofFailed(AssertionError):
    """The two program cells of a page computed different things (raised by ``prove`` unless ``check=False``),
    or a program cell could not be found or run.

    In Jupyter it shows as its lines alone (IPython's ``_render_traceback_``), not as a traceback.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"ProofFailed: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


def _scaled(start, factor: float, kind: str, dtype: str):
    """A JAX start with every weight multiplied by ``factor`` (computed in float64, then cast to ``dtype``)."""
    import jax
    import jax.numpy as jnp

    scale = lambda a: jnp.asarray((np.asarray(a, np.float64) * factor).astype(dtype))
    if kind in WEIGHT_NAMES:
        return tuple(scale(w) for w in start)
    from flax import nnx

    model = nnx.clone(start)
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, jax.tree.map(scale, nnx.to_pure_dict(state)))
    nnx.update(model, state)
    return model


def _hidden(start, kind) -> int:
    if kind == "weights":
        return int(np.shape(_np(start[0]))[1])
    return int(next(iter(start.parameters())).shape[0])


# ---------------------------------------------------------------- showing it

_UPDATE_SHOWN = {"adam": "update, lr·g/(|g|+eps)", "rmsprop": "update, RMSprop's lr·g/(√v+eps)"}  # by optimizer


def proof_lines(proof: Proof) -> str:
    """The parity numbers of a proof as a few aligned lines."""
    lesson = get_lesson(proof.f32.lesson)
    what = _UPDATE_SHOWN.get(lesson.optimizer, "gradient (update / lr)")
    left = "numpy cell  " if lesson.in_numpy else "pytorch cell"
    torch_from, jax_from = proof.sources
    lines = [] if not all(proof.sources) else [f"programs read from: {torch_from} (both cells)"] \
        if torch_from == jax_from else [f"programs read from: {left.strip()} {torch_from}, jax cell {jax_from}"]
    lines += [f"step-0 {what}, float64: worst relative difference {proof.update_diff:.1e}"
              f"   (tolerance {UPDATE_RTOL:.0e})"]
    for c in (proof.f32, proof.f64):
        if c is None:
            continue
        t, j = c.torch_losses, c.jax_losses
        lines += [
            f"{c.dtype}, {c.steps} steps:",
            f"  first loss   {left} {t[0]:<14.7g} jax cell {j[0]:.7g}",
            f"  last loss    {left} {t[-1]:<14.7g} jax cell {j[-1]:.7g}",
            f"  worst relative loss difference {c.loss_diff:.1e}   (tolerance {c.loss_rtol:.0e})"
            + ("" if c.exact_steps >= c.steps else f", over the first {c.exact_steps} steps (chaotic after "
               f"{c.horizon}); mean of the last {TAIL} steps differs by {c.tail_diff:.1e}"),
            f"  ms/step      {left} {1e3 * c.torch_seconds / c.steps:<14.3f} "
            f"jax cell {1e3 * c.jax_seconds / c.steps:.3f}   (JAX compiled beforehand)",
        ]
    said = ("the two programs compute the same thing" if proof.ok else
            "the two programs compute different things: the lines above say where they part")
    lines.append(f"verdict: {proof.verdict} ({said})")
    return "\n".join(lines)


def plot_proof(proof: Proof, ax=None, title: str | None = None):
    """Both cells' float32 loss curves on a log scale; returns the figure."""
    import matplotlib.pyplot as plt

    c = proof.f32
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    ax.plot(c.torch_losses, color="#ee4c2c", linewidth=3.5, alpha=0.5, label="PyTorch cell")
    ax.plot(c.jax_losses, color="#1f4e9c", linewidth=1.3, linestyle="--", label="JAX cell")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title or f"{c.lesson}: the two cells above, from the same start")
    return ax.figure


def parity_table(proofs) -> str:
    """One line per proof: step-0 difference, the curves' difference and its dtype, ms/step, verdict.

    Examples:
      >>> print(parity_table([]))
      lesson           step-0 (f64)  loss diff (dtype)   torch ms/step  jax ms/step  verdict
    """
    rows = [f"{'lesson':16} {'step-0 (f64)':>12}  {'loss diff (dtype)':18} {'torch ms/step':>14} "
            f"{'jax ms/step':>12}  verdict"]
    for p in proofs:
        c = p.f64 if p.f64 is not None else p.f32
        rows.append(f"{c.lesson:16} {p.update_diff:12.1e}  {c.loss_diff:7.1e} ({c.dtype:7}) "
                    f"{1e3 * p.f32.torch_seconds / p.f32.steps:14.3f} {1e3 * p.f32.jax_seconds / p.f32.steps:12.3f}"
                    f"  {p.verdict}")
    return "\n".join(rows)
