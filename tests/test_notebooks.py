"""The learner's notebooks: sources, program cells, every notebook executed, each program alone.

``notebooks/NN_name.md`` (jupytext MyST) is the source of truth; the committed
``.ipynb`` is built from it with its outputs (``jupytext --to ipynb --execute``).
The tests here check that the two files agree, that each lesson's ``pytorch``
and ``jax`` cells are the self-contained programs the page promises, and they
execute every ``.ipynb`` again, cell by cell, in one Jupyter kernel per test
worker (``tests/notebook_kernel.py``, reset to a fresh kernel's state between
notebooks): each program cell runs there as a program with nothing but its
own names (``__name__ == "__main__"``, fresh globals) and must train, and the
lesson pages' ``prove`` cells fail when the two programs disagree.
"""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
from pathlib import Path

import pytest
from notebook_kernel import PROGRAM_TAGS, CellFailed, SharedKernel, ipynb_code_cells


def jupytext_read(path: Path):
    """jupytext's reading of a MyST source (imported here, not at collection: with nbformat it costs seconds)."""
    return pytest.importorskip("jupytext").read(str(path))


FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(FOLDER.glob("[0-9][0-9]_*.md"))
# The lesson pages: the classic edition's 01-08 and the sine edition's 11-18, each a pytorch and a jax cell.
PAGE_LESSON = {
    "01": "numpy", "02": "tensors", "03": "autograd", "04": "custom_function",
    "05": "nn", "06": "optim", "07": "custom_module", "08": "control_flow",
    "11": "sine_numpy", "12": "sine_tensors", "13": "sine_autograd", "14": "sine_custom_function",
    "15": "sine_nn", "16": "sine_optim", "17": "sine_custom_module", "18": "sine_control_flow",
}
LESSON_SOURCES = [p for p in SOURCES if p.stem[:2] in PAGE_LESSON]

# What each JAX cell must show in its own lines (the lesson's idea), beyond `print(t, ...)`.
JAX_IDEA = {
    "01": [r"jnp\.where\("],
    "02": [r"@jax\.jit"],
    "03": [r"jax\.value_and_grad\(|jax\.grad\("],
    "04": [r"@jax\.custom_vjp", r"def my_relu_fwd", r"def my_relu_bwd", r"\.defvjp\(my_relu_fwd, my_relu_bwd\)"],
    "05": [r"nnx\.Linear\(", r"jax\.tree\.map\(lambda p, g: p - learning_rate \* g"],
    "06": [r"optax\.adam\(learning_rate\)", r"optimizer\.init\(", r"optimizer\.update\(", r"optax\.apply_updates\("],
    "07": [r"class TwoLayerNet\(nnx\.Module\)", r"optax\.sgd\(learning_rate\)"],
    "08": [r"class DynamicNet\(nnx\.Module\)", r"jax\.lax\.switch\(", r"optax\.sgd\(learning_rate, momentum=0\.9\)"],
    # the sine edition: y = sin(x) on linspace(-pi, pi, 2000)
    "11": [r'jax\.config\.update\("jax_enable_x64", True\)', r"a = a - learning_rate \* grad_a"],
    "12": [r"@jax\.jit"],
    "13": [r"jax\.value_and_grad\(|jax\.grad\("],
    "14": [r"@jax\.custom_vjp", r"\.defvjp\(", r"1\.5 \* \(5 \* z ?\*\* ?2 - 1\)"],
    "15": [r"nnx\.Linear\(3, 1\b", r"jax\.value_and_grad\(|jax\.grad\(|nnx\.value_and_grad\(|nnx\.grad\("],
    "16": [r"nnx\.Linear\(3, 1\b", r"(?i)rmsprop"],
    "17": [r"class Polynomial3\(nnx\.Module\)", r"optax\.sgd\(learning_rate\)"],
    "18": [r"class \w*DynamicNet\(nnx\.Module\)", r"optax\.sgd\(learning_rate, momentum=0\.9\)"],
}
LEARNING_RATE = {"01": "1e-6", "02": "1e-6", "03": "1e-6", "04": "1e-6",
                 "05": "1e-4", "06": "1e-4", "07": "1e-4", "08": "1e-4",
                 "11": "1e-6", "12": "1e-6", "13": "1e-6", "14": "5e-6",
                 "15": "1e-6", "16": "1e-3", "17": "1e-6", "18": "1e-8"}
JAX_IMPORTS = {"jax", "numpy", "optax", "flax", "functools", "math"}
TUTORIAL_IMPORTS = {"torch", "numpy", "random", "math"}
PRINTED = re.compile(r"^(\d+) (\S+)$")
RESULT = "Result: "  # the sine edition's last line: the fitted polynomial (or model.string())


def lesson_of(source: Path):
    """The page's ``fnnet.LESSONS`` entry (tutorial numbers: steps, print_every, edition)."""
    from fnnet import LESSONS

    return LESSONS[PAGE_LESSON[source.stem[:2]]]


def code_lines(source: str) -> int:
    return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))


def imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    return roots


def test_there_are_eighteen_notebooks_and_no_generator():
    assert [p.stem for p in SOURCES] == [
        "01_numpy", "02_tensors", "03_autograd", "04_custom_function", "05_nn", "06_optim",
        "07_custom_module", "08_control_flow", "09_jit", "10_your_model",
        "11_sine_numpy", "12_sine_tensors", "13_sine_autograd", "14_sine_custom_function",
        "15_sine_nn", "16_sine_optim", "17_sine_custom_module", "18_sine_control_flow"]
    assert not (FOLDER / "build.py").exists()


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_executed_notebook_is_built_from_its_source(source):
    """Same cells, same text, same tags; every code cell executed, none with an error."""
    want = jupytext_read(source)
    have = pytest.importorskip("nbformat").read(source.with_suffix(".ipynb"), as_version=4)
    assert [c.cell_type for c in have.cells] == [c.cell_type for c in want.cells], "cells differ: rebuild the .ipynb"
    for i, (h, w) in enumerate(zip(have.cells, want.cells)):
        assert h.source == w.source, f"cell {i} differs from {source.name}: rebuild the .ipynb"
        assert h.get("metadata", {}).get("tags", []) == w.get("metadata", {}).get("tags", []), f"cell {i} tags"
        if h.cell_type == "code":
            assert h.execution_count is not None, f"cell {i} was not executed"
            assert not [o for o in h.outputs if o.output_type == "error"], f"cell {i} ends in an error"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_prove_reads_every_code_cell_as_jupytext_does(source):
    """``fnnet.notebook.code_cells`` (which spares every kernel jupytext's slow import) against jupytext."""
    from fnnet.parity.proof import code_cells

    want = [(c.get("metadata", {}).get("tags", []), c.source) for c in jupytext_read(source).cells
            if c.cell_type == "code"]
    assert code_cells(source.read_text(encoding="utf-8")) == want


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_markdown_cells_hold_both_languages(source):
    for cell in jupytext_read(source).cells:
        if cell.cell_type == "markdown":
            english, marker, chinese = cell.source.partition("<!-- zh -->")
            assert marker, f"a markdown cell without '<!-- zh -->': {cell.source[:60]!r}"
            assert re.search(r"[A-Za-z]{3}", english) and re.search(r"[\u4e00-\u9fff]", chinese), cell.source[:60]


@pytest.mark.parametrize("source", LESSON_SOURCES, ids=lambda p: p.stem)
def test_lesson_has_the_two_programs(source):
    cells = jupytext_read(source).cells
    where = {tag: [i for i, c in enumerate(cells) if tag in c.get("metadata", {}).get("tags", [])]
             for tag in ("pytorch", "jax")}
    assert len(where["pytorch"]) == 1 and len(where["jax"]) == 1, where
    assert where["jax"][0] == where["pytorch"][0] + 1, "the JAX cell follows the PyTorch cell"
    tutorial, jax_src = cells[where["pytorch"][0]].source, cells[where["jax"][0]].source
    number = source.stem[:2]
    lesson = lesson_of(source)
    every, steps = lesson.print_every, lesson.steps

    assert imported_roots(tutorial) <= TUTORIAL_IMPORTS, imported_roots(tutorial)
    assert imported_roots(jax_src) <= JAX_IMPORTS, imported_roots(jax_src)
    assert code_lines(jax_src) <= 1.5 * code_lines(tutorial), (code_lines(jax_src), code_lines(tutorial))
    for program in (tutorial, jax_src):  # the tutorial's numbers, in both
        if lesson.edition == "sine":
            assert re.search(r"linspace\(-(math|np|jnp|torch)\.pi, (math|np|jnp|torch)\.pi, 2000\b", program)
        else:
            assert "N, D_in, H, D_out = 64, 1000, 100, 10" in program
        assert f"learning_rate = {LEARNING_RATE[number]}" in program
        assert f"if t % {every} == {every - 1}:" in program and "print(t, " in program
        assert re.search(r"def train\(", program)
        assert "if __name__ == \"__main__\":" in program
        assert re.search(rf"steps={steps}\)|range\({steps}\)|\({steps},\)", program)
    if lesson.edition == "sine":
        assert RESULT in tutorial, "the tutorial's program ends by printing the fitted polynomial"
    for idea in JAX_IDEA[number]:
        assert re.search(idea, jax_src), idea


# ---------------------------------------------------------------- every notebook executed, each program alone
# The notebooks run in one Jupyter kernel (tests/notebook_kernel.py), as one class that xdist schedules as one
# unit (--dist loadscope: a class is a unit) and first of all (conftest.py, LONGEST_FIRST): it pays for one
# kernel and its imports, and its hundred seconds start while the rest of the suite fills the other worker.


def pytest_generate_tests(metafunc):
    pages = getattr(metafunc.cls, "PAGES", None)
    if pages is None:
        return
    if "page" in metafunc.fixturenames:
        metafunc.parametrize("page", pages)
    if "program" in metafunc.fixturenames:
        programs = [(stem, tag) for stem in pages if stem[:2] in PAGE_LESSON for tag in PROGRAM_TAGS]
        metafunc.parametrize("program", programs, ids=[f"{stem}-{tag}" for stem, tag in programs])


@pytest.fixture(scope="session")
def shared_kernel():
    """This worker's one Jupyter kernel for notebooks."""
    kernel = SharedKernel()
    yield kernel
    kernel.close()


@pytest.fixture(scope="session")
def executed(shared_kernel, tmp_path_factory):
    """``executed(stem)``: the notebook executed once in the shared kernel (then remembered), as each program
    cell's stdout by tag; a notebook that failed fails every test that asks for it.

    Each ``.ipynb`` runs copied alone into an empty folder, as a learner's download from the site would: its
    proof finds the programs in the kernel's history (no ``.md`` beside it)."""
    done = {}

    def run(stem):
        if stem not in done:
            alone = tmp_path_factory.mktemp(f"alone-{stem}") / f"{stem}.ipynb"
            shutil.copy(FOLDER / f"{stem}.ipynb", alone)
            try:
                done[stem] = shared_kernel.run(alone)
            except CellFailed as failure:
                done[stem] = failure
        if isinstance(done[stem], CellFailed):
            raise done[stem]
        return done[stem]

    return run


class TestPages:
    PAGES = [p.stem for p in SOURCES]

    def test_notebook_executes(self, page, executed):
        """Every code cell of the executed ``.ipynb`` runs without an error; on the lesson pages the last cells
        run ``prove``, which raises when the two programs disagree (see the test at the end of this file)."""
        executed(page)

    def test_program_cell_runs_alone_and_trains(self, program, executed):
        stem, tag = program
        printed = executed(stem)[tag]
        lesson = lesson_of(FOLDER / f"{stem}.md")
        lines = [line.strip() for line in printed.splitlines() if line.strip()]
        results = [line for line in lines if line.startswith(RESULT)]
        if lesson.edition == "sine":  # the fitted polynomial, printed once at the end as the tutorial does
            assert len(results) <= 1 and (tag == "jax" or len(results) == 1), printed
            assert not results or lines[-1] == results[0], printed
        steps_printed = [PRINTED.match(line) for line in lines if line not in results]
        assert steps_printed and all(steps_printed), printed
        steps = [int(m.group(1)) for m in steps_printed]
        losses = [float(m.group(2)) for m in steps_printed]
        every = lesson.print_every  # the tutorial's steps, printed as the tutorial does
        assert steps == list(range(every - 1, lesson.steps, every)), steps
        assert all(math.isfinite(v) and v >= 0 for v in losses), losses
        # DynamicNet's random depth makes its curve erratic (as in the tutorial), and the sine fits start from
        # random coefficients and stop at the cubic's floor: their loss falls, not always tenfold
        factor = 1 if lesson.id.endswith("control_flow") or lesson.edition == "sine" else 10
        assert losses[-1] < losses[0] / factor, f"the loss did not fall: {losses}"


    def test_the_shared_kernel_runs_each_program_alone_and_each_notebook_fresh(self, shared_kernel, tmp_path):
        """What lets one kernel stand in for eighteen: a program that borrows a name from the cell above it
        fails, and a notebook finds none of the names or switches the one before it left."""
        def notebook(name, *cells):
            cells = [{"cell_type": "code", "execution_count": None, "metadata": {"tags": tags}, "outputs": [],
                      "source": source} for tags, source in cells]
            (tmp_path / f"{name}.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                                "nbformat_minor": 5}), encoding="utf-8")
            return tmp_path / f"{name}.ipynb"

        alone = notebook("alone", (["pytorch"], "import math\nx = 1\nprint(0, math.pi)"),
                         (["jax"], "print(1, 2.0)"), ([], "assert x == 1"))  # the cells below see its names
        assert shared_kernel.run(alone) == {"pytorch": f"0 {math.pi}\n", "jax": "1 2.0\n"}
        borrows = notebook("borrows", (["pytorch"], "x = 1"), (["jax"], "print(0, x)"))
        with pytest.raises(CellFailed, match=r"borrows.ipynb, code cell 1 \(jax\)' raised NameError"):
            shared_kernel.run(borrows)
        fresh = notebook("fresh", ([], "import jax, torch\nassert 'left' not in dir()\n"
                                       "assert not jax.config.jax_enable_x64\n"
                                       "assert torch.get_default_dtype() == torch.float32"))
        shared_kernel.run(fresh)
        shared_kernel.run(notebook("dirty", ([], "import jax, torch\nleft = 1\n"
                                                 "jax.config.update('jax_enable_x64', True)\n"
                                                 "torch.set_default_dtype(torch.float64)")))
        shared_kernel.run(fresh)
        with pytest.raises(CellFailed, match="AssertionError"):  # the checks can fail: skip the reset once
            shared_kernel._execute("left = 1", "a name left behind")
            shared_kernel._execute(ipynb_code_cells(fresh)[0][1], "fresh, not reset")


def test_notebook_metadata_names_a_python_kernel():
    for source in SOURCES:
        kernel = json.loads(source.with_suffix(".ipynb").read_text())["metadata"]["kernelspec"]
        assert kernel["name"] == "python3"


def test_a_page_whose_cells_disagree_does_not_execute(tmp_path):
    """prove raises when the two programs compute different things, so executing a page asserts parity."""
    from fnnet.parity.proof import ProofFailed, prove

    source = (FOLDER / "13_sine_autograd.md").read_text(encoding="utf-8")
    jax_cell = source.index(":tags: [jax]")
    changed = source[:jax_cell] + source[jax_cell:].replace("learning_rate = 1e-6", "learning_rate = 1.1e-6", 1)
    assert changed != source
    (tmp_path / "13_sine_autograd.md").write_text(changed, encoding="utf-8")
    with pytest.raises(ProofFailed, match="disagree"):
        prove("13_sine_autograd", "sine_autograd", steps=50, folder=tmp_path)
    assert not prove("13_sine_autograd", "sine_autograd", steps=50, folder=tmp_path, check=False).ok
    assert prove("13_sine_autograd", "sine_autograd", steps=50, folder=FOLDER).ok  # the page as it is
