"""What the lesson pages teach and ask, checked against the pages themselves.

Each lesson page (``notebooks/NN_name.md``, 01-08 and 11-18) opens with a key-concepts box that links the
tutorial's own file (``fnnet.LESSONS[id].tutorial``), ends with a summary and two or three exercises, and
carries, at the end of its "What changed" section, the pairs of lines that do the same job in its two programs:

    <!-- pairs
    PyTorch line(s) ||| JAX line(s) ||| note
    -->

(several lines of one side joined by `` ;; ``, ``(none)`` for a side with no line). At least one exercise is a
"break it": a fenced ``diff`` block that names the cell (``--- jax cell`` or ``--- pytorch cell``) and changes
one of its lines (``-`` the line as it is, ``+`` the broken one). The tests read those edits from the page,
apply them to a copy of the page and run its proof, which must then fail (or, where the exercise names a
``jax.errors`` class, raise it): an exercise that no longer applies to its page fails here. The glossary
(``notebooks/glossary.md``) and the index's learning path (``notebooks/index.md``) are checked against the
pages they link.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "notebooks"
PAGE_LESSON = {
    "01": "numpy", "02": "tensors", "03": "autograd", "04": "custom_function",
    "05": "nn", "06": "optim", "07": "custom_module", "08": "control_flow",
    "11": "sine_numpy", "12": "sine_tensors", "13": "sine_autograd", "14": "sine_custom_function",
    "15": "sine_nn", "16": "sine_optim", "17": "sine_custom_module", "18": "sine_control_flow",
}
PAGES = sorted(p.stem for p in FOLDER.glob("[0-9][0-9]_*.md"))
LESSON_PAGES = [stem for stem in PAGES if stem[:2] in PAGE_LESSON]
ZH = "<!-- zh -->"
BREAK_STEPS = 20  # enough for every break to show (08's and 18's torch-2 zero_grad need a step with nothing to train)

DIFF = re.compile(r"^(?P<indent>[ \t]*)```diff\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)
PAIRS = re.compile(r"<!-- pairs\n(?P<body>.*?)\n-->", re.S)
DETAILS = re.compile(r"<details>\s*<summary>[^<]+</summary>\s*\n\n.+?\n\s*</details>", re.S)
JAX_ERROR = re.compile(r"`jax\.errors\.(\w+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


# ---------------------------------------------------------------- reading a page


def cells(stem: str) -> list[tuple[str, list[str], str]]:
    """The page's cells as (kind, tags, source), kind "markdown" or "code", as jupytext reads them."""
    return _cells(stem)


@functools.cache
def _cells(stem: str):
    notebook = pytest.importorskip("jupytext").read(str(FOLDER / f"{stem}.md"))
    return [(c.cell_type, c.get("metadata", {}).get("tags", []), c.source) for c in notebook.cells]


def halves(source: str) -> tuple[str, str]:
    english, _, chinese = source.partition(ZH)
    return english.strip(), chinese.strip()


def markdown(stem: str) -> list[tuple[str, str]]:
    return [halves(source) for kind, _, source in cells(stem) if kind == "markdown"]


def program(stem: str, tag: str) -> str:
    (source,) = [source for kind, tags, source in cells(stem) if kind == "code" and tag in tags]
    return source


def section(stem: str, heading: str) -> tuple[str, str]:
    """The markdown cell whose English half starts with ``## heading``."""
    found = [pair for pair in markdown(stem) if pair[0].startswith(f"## {heading}")]
    assert len(found) == 1, f"{stem}: expected one '## {heading}' cell, found {len(found)}"
    return found[0]


class Break:
    """One "break it" edit: in the ``cell`` (pytorch or jax) program, the line ``old`` becomes ``new``."""

    def __init__(self, cell: str, old: str, new: str, error: str | None):
        self.cell, self.old, self.new, self.error = cell, old, new, error

    def __repr__(self):
        return f"Break({self.cell}: {self.old.strip()!r} -> {self.new.strip()!r})"


def diff_blocks(text: str) -> list[str]:
    blocks = []
    for m in DIFF.finditer(text):
        indent = len(m.group("indent"))
        blocks.append("\n".join(line[indent:] for line in m.group("body").splitlines()))
    return blocks


def breaks(stem: str) -> list[Break]:
    """The page's "break it" edits, read from the diff blocks of its Exercises cell (English half)."""
    english, _ = section(stem, "Exercises")
    found = []
    for item in re.split(r"\n(?=\d+\. )", english):
        for block in diff_blocks(item):
            lines = block.splitlines()
            head = re.fullmatch(r"--- (pytorch|jax) cell", lines[0])
            assert head and lines[1].startswith("+++ "), f"{stem}: a diff block starts '--- jax cell', '+++ ...'"
            old = [line[1:] for line in lines[2:] if line.startswith("-")]
            new = [line[1:] for line in lines[2:] if line.startswith("+")]
            assert len(old) == 1 and len(new) == 1 and len(lines) == 4, f"{stem}: a break changes one line"
            error = JAX_ERROR.search(item)
            found.append(Break(head.group(1), old[0], new[0], error and error.group(1)))
    return found


def pairs(text: str) -> list[tuple[list[str], list[str], str]]:
    """The (PyTorch lines, JAX lines, note) pairs of a ``<!-- pairs -->`` block."""
    m = PAIRS.search(text)
    assert m, "no <!-- pairs --> block"
    rows = []
    for line in m.group("body").splitlines():
        torch_side, jax_side, note = (part.strip() for part in line.split("|||"))
        side = lambda s: [] if s == "(none)" else [part.strip() for part in s.split(";;")]
        rows.append((side(torch_side), side(jax_side), note))
    return rows


def broken_page(stem: str, edit: Break) -> str:
    """The page's text with ``edit`` applied to its one line in the named program cell."""
    text = (FOLDER / f"{stem}.md").read_text(encoding="utf-8")
    start = text.index(f":tags: [{edit.cell}]")
    end = text.index("\n```\n", start)
    lines = text[start:end].split("\n")
    assert lines.count(edit.old) == 1, f"{stem}: the {edit.cell} cell no longer has the line {edit.old!r}"
    lines[lines.index(edit.old)] = edit.new
    return text[:start] + "\n".join(lines) + text[end:]


# ---------------------------------------------------------------- the lesson pages


@pytest.mark.parametrize("stem", LESSON_PAGES)
def test_a_lesson_opens_with_its_key_concepts_and_the_tutorial_it_follows(stem):
    from fnnet import LESSONS

    english, chinese = markdown(stem)[1]  # right after the title
    assert english.startswith("> **Key concepts**") and chinese.startswith("> **要点**"), english[:40]
    original = LESSONS[PAGE_LESSON[stem[:2]]].tutorial
    for half in (english, chinese):
        assert 2 <= half.count("\n> - ") <= 5, "two to five concepts"
        assert f"({original})" in half, f"the box links the tutorial's file {original}"
        assert re.search(r"\(https://(docs\.jax\.dev|optax\.readthedocs\.io|flax\.readthedocs\.io)/", half)


@pytest.mark.parametrize("stem", LESSON_PAGES)
def test_a_lesson_ends_with_a_summary_and_exercises_with_solutions(stem):
    markdown_cells = markdown(stem)
    assert markdown_cells[-1][0].startswith("## Exercises") and markdown_cells[-1][1].startswith("## 练习")
    assert markdown_cells[-2][0].startswith("## What you learned")
    assert markdown_cells[-2][1].startswith("## 本课小结")
    for half in markdown_cells[-2]:
        assert 3 <= len(re.findall(r"^- ", half, re.M)) <= 5, "a three-to-five-line summary"
    english, chinese = markdown_cells[-1]
    for half in (english, chinese):
        exercises = re.findall(r"^\d+\. \*\*", half, re.M)
        assert 2 <= len(exercises) <= 3, half[:80]
        assert len(DETAILS.findall(half)) == len(exercises), "every exercise has its solution in <details>"
    assert diff_blocks(english) == diff_blocks(chinese), "both languages break the same line"


@pytest.mark.parametrize("stem", LESSON_PAGES)
def test_every_break_it_changes_a_line_its_cell_has(stem):
    """The fast half of the exercises' check: each edit applies to its page as the page is now."""
    edits = breaks(stem)
    assert edits, f"{stem} has no 'break it' exercise"
    assert any(e.cell == "jax" for e in edits), "at least one break changes the JAX program"
    for edit in edits:
        assert edit.old != edit.new
        broken_page(stem, edit)  # asserts the line is there, once


@pytest.fixture
def jax_as_in_jupyter():
    """JAX configured as a notebook kernel has it while the pages' programs run here, and restored afterwards:
    rank promotion allowed (the suite's conftest raises on it; 15 and 16 broadcast (2000, 1) against (3,)),
    and float64 off again after a page that switches it on when the proof loads it (01, 11)."""
    import jax

    saved = {name: getattr(jax.config, name) for name in ("jax_enable_x64", "jax_numpy_rank_promotion")}
    jax.config.update("jax_numpy_rank_promotion", "allow")
    yield
    for name, value in saved.items():
        jax.config.update(name, value)


@pytest.mark.slow
@pytest.mark.parametrize("stem", LESSON_PAGES)
def test_every_break_it_fails_the_proof(stem, tmp_path, jax_as_in_jupyter):
    """Each page's "break it", applied to a copy of the page: its proof (a few steps) must not pass."""
    from fnnet.notebook import prove

    for i, edit in enumerate(breaks(stem)):
        folder = tmp_path / f"break-{i}"
        folder.mkdir()
        (folder / f"{stem}.md").write_text(broken_page(stem, edit), encoding="utf-8")
        if edit.error:  # the exercise says which JAX error stops the program: raised, or named by the proof
            with pytest.raises(Exception) as raised:
                prove(stem, PAGE_LESSON[stem[:2]], folder=folder, check=False, steps=BREAK_STEPS)
            assert raised.type.__name__ == edit.error or edit.error in str(raised.value), raised.value
        else:
            proof = prove(stem, PAGE_LESSON[stem[:2]], folder=folder, check=False, steps=BREAK_STEPS)
            assert not proof.ok, f"{edit}: the proof still passes"


@pytest.mark.parametrize("stem", LESSON_PAGES)
def test_what_changed_pairs_lines_that_are_in_the_two_programs(stem):
    english, chinese = section(stem, "What changed")
    rows, rows_zh = pairs(english), pairs(chinese)
    assert len(rows) >= 3, "a few pairs per page"
    assert [r[:2] for r in rows] == [r[:2] for r in rows_zh], "both languages pair the same lines"
    assert all(note and note_zh for (*_, note), (*_, note_zh) in zip(rows, rows_zh))
    sources = {tag: [line.strip() for line in program(stem, tag).splitlines()] for tag in ("pytorch", "jax")}
    for torch_lines, jax_lines, note in rows:
        assert torch_lines or jax_lines, note
        for tag, fragments in (("pytorch", torch_lines), ("jax", jax_lines)):
            for fragment in fragments:
                assert any(fragment in line for line in sources[tag]), f"{stem}: {fragment!r} is not in its {tag} cell"


# ---------------------------------------------------------------- the glossary and the learning path


FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
READING_ORDER = LESSON_PAGES + [stem for stem in PAGES if stem not in LESSON_PAGES]  # the lessons, then 09 and 10


@functools.cache
def code_on(stem: str) -> str:
    """What a page has the learner run or write: its code cells and the fenced code of its markdown (English half)."""
    parts = []
    for kind, _, source in cells(stem):
        parts += [source] if kind == "code" else FENCE.findall(halves(source)[0])
    return "\n".join(parts)


def term_key(span: str) -> str:
    """What a glossary entry is looked up by: the code up to its first call ``(`` (kept) or index ``[`` (dropped),
    without a one-letter receiver (``x.item()`` -> ``.item(``); the whole entry when that leaves under 3 characters.

    Examples: ``jnp.maximum(x, 0)`` -> ``jnp.maximum(``; ``x.at[i].set(v)`` -> ``.at``; ``@`` -> ``@``.
    """
    cuts = [i for i in (span.find("("), span.find("[")) if i >= 0]
    cut = min(cuts) if cuts else len(span)
    key = span[:cut + 1] if cut < len(span) and span[cut] == "(" else span[:cut]
    key = re.sub(r"^[a-z]\.", ".", key)
    return key if len(key) >= 3 else span


def first_page_using(span: str) -> str | None:
    """The first page, in reading order (the lessons, then the extras), whose code uses ``span``'s key."""
    key = term_key(span)
    return next((stem for stem in READING_ORDER if key in code_on(stem)), None)


def test_the_glossary_links_each_term_to_the_page_that_first_uses_it():
    english, chinese = halves((FOLDER / "glossary.md").read_text(encoding="utf-8"))
    assert re.search(r"[\u4e00-\u9fff]", chinese)
    tables = []
    for half in (english, chinese):
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in half.splitlines()
                if line.startswith("| ") and line.rstrip().endswith(".ipynb) |")]
        assert all(len(r) == 4 for r in rows), "PyTorch | JAX | what changes | first used"
        assert len(rows) >= 20, "the table a PyTorch user needs"
        for torch_side, jax_side, note, link in rows:
            (page,) = LINK.findall(link)
            assert (FOLDER / page).with_suffix(".md").is_file(), f"no page {page}"
            spans = re.findall(r"`([^`]+)`", jax_side)
            if spans:  # "(nothing)": the torch line has no JAX counterpart, nothing to look up
                first = first_page_using(spans[0])
                assert first == Path(page).stem, f"{spans[0]!r} is first used on {first}, the row links {page}"
            assert note, torch_side
        tables.append([(r[0], r[1], r[3]) for r in rows])
    assert tables[0] == tables[1], "both languages list the same terms and links"
    for term in ("`@`", "jnp.maximum", "value_and_grad", "optax.apply_updates", "nnx.Param", "__call__",
                 "jax.custom_vjp", "jax.random.split", "jax.device_put", "@jax.jit"):
        assert term in english, f"the glossary has {term}"


def test_the_learning_path_has_two_tracks_the_extras_and_each_lessons_original():
    from fnnet import LESSONS

    english, chinese = halves((FOLDER / "index.md").read_text(encoding="utf-8"))
    for half in (english, chinese):
        linked = [Path(link).stem for link in LINK.findall(half) if link.endswith(".ipynb")]
        assert sorted(set(linked)) == PAGES, linked
        sine = [p for p in linked if p[:2] > "10"]
        classic = [p for p in linked if p[:2] < "09"]
        assert linked.index(sine[0]) < linked.index(classic[0]), "the sine edition first, as pytorch.org teaches"
        assert linked.index("09_jit") > linked.index(classic[-1]) and linked.index("10_your_model") > linked.index(sine[-1])
        for stem in LESSON_PAGES:
            assert f"({LESSONS[PAGE_LESSON[stem[:2]]].tutorial})" in half, f"the index links {stem}'s original"
    assert "extra" in english.lower() and "附加" in chinese


# ---------------------------------------------------------------- what the pages need installed


def imported_roots(source: str) -> set[str]:
    import ast

    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_notebooks_extra_installs_what_every_page_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    installs = {re.split(r"[<>=!~ \[;]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted}
    installs.add(project["name"])
    provided = importlib.metadata.packages_distributions()
    for stem in PAGES:
        for kind, _, source in cells(stem):
            if kind != "code":
                continue
            for root in imported_roots(source) - set(sys.stdlib_module_names):
                distributions = {d.lower().replace("_", "-") for d in provided.get(root, [root])}
                assert distributions & installs, f"{stem} imports {root}, which neither fnnet nor its notebooks extra installs"
