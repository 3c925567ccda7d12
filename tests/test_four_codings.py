"""The four codings of every lesson agree, from one start (issue 20, "one lesson, one source").

A lesson is coded four times on purpose: the page's PyTorch cell (``notebooks/NN_name.md``, tagged
``pytorch``), the page's JAX cell (tagged ``jax``), the library's lesson (``fnnet.fit``) and
``fnnet.torch_ref``. From the start the page's PyTorch cell draws, two pairs are trained in float64 and judged
by the rule ``fnnet compare`` applies (``fnnet.parity.engine``: curves within 1e-9, first updates within
1e-10): the PyTorch cell and ``torch_ref`` (the page is the tutorial, so ``torch_ref`` follows it), the JAX
cell and the library. The remaining pairs are proved elsewhere: the page's two cells by the page's own
``prove`` (tests/test_notebooks.py executes it), the library and ``torch_ref`` by tests/test_compare.py and
tests/test_sine.py. A drift fails here with the lesson and the pair in the message.

These need PyTorch. Outside CI they are skipped when it is missing; under CI (``CI`` set) a missing torch
is an error, never a skip.
"""

import os
from pathlib import Path

import jax
import pytest

if os.environ.get("CI"):
    import torch
else:
    torch = pytest.importorskip("torch")

from fnnet.lessons import LESSONS
from fnnet.parity import codings

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
STEPS = 30  # the tutorial's 500, 2000 or 30000 steps are not needed: in float64 a drift shows at once
PAIRS = [f"{ref} vs {ours}" for ref, ours in codings.PAIRS]


def page_of(lesson_id: str) -> str:
    """The lesson's page: ``NN_<lesson id>`` (the numbering of tests/test_notebooks.py's PAGE_LESSON)."""
    (path,) = FOLDER.glob(f"[0-9][0-9]_{lesson_id}.md")
    return path.stem


@pytest.fixture(scope="module", autouse=True)
def as_the_pages_run():
    """One torch thread; JAX's rank promotion as a learner's kernel has it (the pages write ``x[:, None] ** p``),
    not the suite's strict setting (tests/conftest.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with jax.numpy_rank_promotion("allow"):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def agreement():
    """``agreement(lesson_id)``: the lesson's two pairs, run once per module."""
    done = {}

    def get(lesson_id):
        if lesson_id not in done:
            done[lesson_id] = codings.agreement(page_of(lesson_id), lesson_id, steps=STEPS, folder=FOLDER)
        return done[lesson_id]

    return get


def _verdict(lesson_id: str, pair: str, comparison) -> str:
    return f"{lesson_id}: page {pair}: {comparison.summary()}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson_id, pair", [(lesson_id, pair) for lesson_id in LESSONS for pair in PAIRS],
                         ids=lambda v: v.replace(" ", "-"))
def test_the_codings_agree(agreement, lesson_id, pair):
    c = agreement(lesson_id)[pair]
    assert c.dtype == "float64" and c.steps == STEPS and len(c.torch_losses) == len(c.jax_losses) == STEPS
    assert c.ok, _verdict(lesson_id, pair, c)


@pytest.mark.slow
def test_a_changed_torch_ref_fails_naming_the_lesson_and_the_pair(monkeypatch):
    """torch_ref's tensors loop at a rate 0.1% off: its pair fails, the other pair still agrees."""
    from fnnet.parity import torch_ref

    right = torch_ref.run_tensors
    monkeypatch.setattr(torch_ref, "run_tensors",
                        lambda w, x, y, *, steps, lr: right(w, x, y, steps=steps, lr=lr * 1.001))
    result = codings.agreement(page_of("tensors"), "tensors", steps=5, folder=FOLDER)
    drift, kept = result[PAIRS[0]], result[PAIRS[1]]
    assert not drift.ok and drift.grad_diff > 1e-4 and kept.ok
    assert _verdict("tensors", PAIRS[0], drift).startswith("tensors: page pytorch cell vs torch_ref: float64, 5 steps")


@pytest.mark.slow
def test_a_changed_jax_cell_fails_naming_the_lesson_and_the_pair(tmp_path):
    """A page whose JAX cell's factor 2.0 became 2.01: the JAX cell and the library part, the PyTorch pair holds."""
    source = (FOLDER / "11_sine_numpy.md").read_text(encoding="utf-8")
    jax_cell = source.index(":tags: [jax]")
    changed = source[:jax_cell] + source[jax_cell:].replace("2.0 * (y_pred - y)", "2.01 * (y_pred - y)", 1)
    assert changed != source
    (tmp_path / "11_sine_numpy.md").write_text(changed, encoding="utf-8")
    result = codings.agreement("11_sine_numpy", "sine_numpy", steps=5, folder=tmp_path)
    assert result[PAIRS[0]].ok and not result[PAIRS[1]].ok
    assert result[PAIRS[1]].grad_diff > 1e-3
