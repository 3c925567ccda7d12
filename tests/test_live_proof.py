"""The pages' proof judges what the learner ran, in a real Jupyter kernel (driven by nbclient).

A lesson notebook downloaded alone (no ``.md`` beside it) runs top to bottom with
a passing proof; editing its JAX cell's learning rate and re-running that cell and
the proof gives a failing proof, shown as its lines alone (no traceback); restoring
the cell gives ``ok`` again. Each program cell of a lesson page starts with its marker.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fnnet.notebook import code_cells, marker

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
LESSON_PAGES = [p for p in sorted(FOLDER.glob("[0-9][0-9]_*.md")) if p.stem[:2] not in ("09", "10")]


@pytest.mark.parametrize("page", LESSON_PAGES, ids=[p.stem for p in LESSON_PAGES])
def test_every_program_cell_starts_with_its_marker(page):
    programs = [(tags, source) for tags, source in code_cells(page.read_text(encoding="utf-8"))
                if {"pytorch", "jax"} & set(tags)]
    assert len(programs) == 2
    for tags, source in programs:
        tag = "pytorch" if "pytorch" in tags else "jax"
        assert source.splitlines()[0] == marker(page.stem, tag), (page.name, tag, source.splitlines()[0])


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def test_a_downloaded_notebook_proves_what_the_learner_ran(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    shutil.copy(FOLDER / "12_sine_tensors.ipynb", tmp_path)  # alone: no .md beside it
    nb = nbformat.read(tmp_path / "12_sine_tensors.ipynb", as_version=4)
    jax_index = next(i for i, c in enumerate(nb.cells) if "jax" in c.metadata.get("tags", []))
    proof_index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and 'prove("12_sine_tensors"' in c.source)
    original = nb.cells[jax_index].source
    assert re.search(r"^learning_rate = 1e-6$", original, re.M)

    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells[:proof_index + 1]):  # top to bottom, through the proof
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        first = _outputs_text(nb.cells[proof_index])
        assert "verdict: ok" in first and "programs read from: this kernel's last run" in first, first

        nb.cells[jax_index].source = original.replace("learning_rate = 1e-6", "learning_rate = 1.5e-6")
        client.execute_cell(nb.cells[jax_index], jax_index)
        client.execute_cell(nb.cells[proof_index], proof_index)
        edited = _outputs_text(nb.cells[proof_index])
        assert "verdict: FAIL" in edited, edited
        assert "Traceback" not in edited and "File " not in edited  # the proof's lines, not 30 frames

        nb.cells[jax_index].source = original.replace("learning_rate = 1e-6", "learning_rate = 2e-6")  # edited,
        nb.cells[jax_index].source = original  # then put back, but not re-run: the last run still counts
        client.execute_cell(nb.cells[proof_index], proof_index)
        assert "verdict: FAIL" in _outputs_text(nb.cells[proof_index])

        client.execute_cell(nb.cells[jax_index], jax_index)
        client.execute_cell(nb.cells[proof_index], proof_index)
        assert "verdict: ok" in _outputs_text(nb.cells[proof_index])


def test_a_parameter_the_jax_cell_lacks_is_one_proof_line(tmp_path):
    """Page 17's exercise: d as a plain array in the JAX cell; the proof names d in one line (it was a KeyError)."""
    from fnnet.notebook import ProofFailed, prove

    page = (FOLDER / "17_sine_custom_module.md").read_text(encoding="utf-8")
    param = "        self.d = nnx.Param(jax.random.normal(rngs.params(), ()))"
    assert page.count(param) == 1
    (tmp_path / "17_sine_custom_module.md").write_text(
        page.replace(param, "        self.d = jax.random.normal(rngs.params(), ())"), encoding="utf-8")
    with pytest.raises(ProofFailed) as info:
        prove("17_sine_custom_module", "sine_custom_module", steps=5, folder=tmp_path, check=False)
    assert "no parameter 'd'" in str(info.value) and "\n" not in str(info.value)
