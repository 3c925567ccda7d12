"""Write the site's two source trees, ``en/`` and ``zh/``: lessons, guide and API reference.

Usage: python docs/make_pages.py OUT   (docs/build.sh calls it; nothing is executed again)

Lessons: each notebook's markdown cells hold English, a ``<!-- zh -->`` line,
then Chinese: a tree keeps its own half. The two program cells (tagged
``pytorch`` and ``jax``) become one tab set, PyTorch | JAX | side by side |
what changed, with each program's printed output under it; the last tab pairs
the lines doing the same job, read from the ``<!-- pairs -->`` block of the
page's "What changed" cell. Every other cell stays as it is, outputs and plots
included, and the page links to the full bilingual notebook.

The front page is its introduction, then the learning path
(``notebooks/index.md``), then the navigation; the glossary
(``notebooks/glossary.md``) is a page of its own. Both are bilingual the way
the notebooks' markdown cells are.

Guide: ``docs/guide/NAME.md`` (English) and ``docs/guide/zh/NAME.md`` (its
translation, where there is one; otherwise the zh tree gets the English page
with a note, so every language link lands). The command's reference is read
from the parser into ``command.md`` (docs/reference.py), as is the API
reference from the docstrings. conf.py links every page to the same page in
the other language.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from pathlib import Path

import nbformat

import reference

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LEARNING_PATH = NOTEBOOKS / "index.md"  # the front page's learning path, both languages
GLOSSARY = NOTEBOOKS / "glossary.md"
PAIRS = re.compile(r"<!-- pairs\n(.*?)\n-->", re.S)  # "PyTorch line(s) ||| JAX line(s) ||| note", sides split by ";;"
GUIDE = ROOT / "docs" / "guide"
GUIDE_PAGES = ("getting-started", "your-model", "command", "compare", "sweep", "speed", "devices", "checkpoints",
               "training-loop")
FIGURES = sorted((ROOT / "docs").glob("*.png"))  # the guide's pictures, referred to as ../NAME.png
GENERATED = {  # a guide page's marker -> what replaces it in the site (made from the code, so it cannot drift)
    "<!-- the command's reference, generated from fnnet.cli.build_parser() -->":
        lambda parser: reference.command_reference(parser),
    "<!-- the layout, generated from src/fnnet -->": lambda parser: reference.layout_tree(ROOT / "src" / "fnnet"),
    "<!-- the imports, generated from src/fnnet -->":
        lambda parser: reference.imports_between(ROOT / "src" / "fnnet"),
}
UNTRANSLATED = {"zh": "本页尚未译成中文，下面是英文原文。"}
CAPTIONS = {
    "en": {"classic": "Lessons: the classic edition", "sine": "Lessons: the sine edition (start here)",
           "extras": "Extras", "guide": "Guide", "api": "API reference", "glossary": "Glossary"},
    "zh": {"classic": "课程：经典版", "sine": "课程：正弦版（从这里开始）", "extras": "附加内容", "guide": "使用指南",
           "api": "API 参考", "glossary": "术语表"},
}
LANGS = ("en", "zh")
OTHER = {"en": ("zh", "中文", "zh-CN"), "zh": ("en", "English", "en")}
WORDS = {
    "en": {"output": "Output", "both": "Side by side", "download": "Download this notebook (.ipynb, both languages)",
           "tutorial": "PyTorch", "numpy": "NumPy", "jax": "JAX", "changes": "What changed", "note": "Why"},
    "zh": {"output": "输出", "both": "并排对照", "download": "下载这个笔记本（.ipynb，中英双语）",
           "tutorial": "PyTorch", "numpy": "NumPy", "jax": "JAX", "changes": "变化对照", "note": "原因"},
}
USED = {"en": "fnnet on this page, in the API reference:", "zh": "本页用到的 fnnet，见 API 参考："}
FNNET_NAME = re.compile(r"\bfnnet(?:\.[A-Za-z_]\w*)+|\bfrom (fnnet[\w.]*) import ([\w, ]+)")
INDEX = {
    "en": """# fnnet: Learning PyTorch with Examples, the JAX way

The PyTorch tutorial, rebuilt lesson by lesson in both its editions: a cubic fitted to sin(x), as pytorch.org teaches
it today, and the first edition's two-layer ReLU network on random data. Every lesson page puts the tutorial's
PyTorch program beside a plain JAX program that does the same thing, then runs both from the same start and shows
that they compute the same losses.

Each program on a page runs alone: copy it into a file and run it with `python` (PyTorch, or JAX with optax and flax,
installed). To open the notebooks themselves, from a clone of the repository:

```bash
pip install -c constraints.txt -e ".[notebooks]"
jupyter lab notebooks/
```
""",
    "zh": """# fnnet：用 JAX 的方式重写《Learning PyTorch with Examples》

把这份 PyTorch 教程的两个版本一课一课地用 JAX 重新实现：pytorch.org 现在讲授的用三次多项式拟合 sin(x)，以及第一版在随机数据上
训练的两层 ReLU 网络。每一课的页面都把教程的 PyTorch 程序和做同样事情的纯 JAX 程序放在一起，然后让两者从同一个起点出发运行，证明
它们算出的损失相同。

页面上的每段程序都能单独运行：复制到文件里，用 `python` 运行即可（需要安装 PyTorch，或者 JAX 及 optax、flax）。要打开笔记本本身，
在仓库的克隆里运行：

```bash
pip install -c constraints.txt -e ".[notebooks]"
jupyter lab notebooks/
```
""",
}


def half(text: str, lang: str) -> str:
    english, marker, chinese = text.partition("<!-- zh -->")
    if not marker:
        raise ValueError(f"markdown cell without '<!-- zh -->': {text[:60]!r}")
    return (english if lang == "en" else chinese).strip()


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream").rstrip()


def block(source: str, output: str, lang: str, heading: str | None = None) -> str:
    parts = [f"**{heading}**\n"] if heading else []
    parts.append(f"```python\n{source.rstrip()}\n```")
    if output:
        parts.append(f"{WORDS[lang]['output']}:\n\n```text\n{output}\n```")
    return "\n\n".join(parts)


def pairs(text: str) -> list[tuple[list[str], list[str], str]]:
    """The (PyTorch lines, JAX lines, note) of a ``<!-- pairs -->`` block; ``(none)`` is a side with no line."""
    found = PAIRS.search(text)
    rows = []
    for line in found.group(1).splitlines() if found else []:
        torch_side, jax_side, note = (part.strip() for part in line.split("|||"))
        side = lambda s: [] if s == "(none)" else [part.strip() for part in s.split(";;")]
        rows.append((side(torch_side), side(jax_side), note))
    return rows


def changes(rows, lang: str, tutorial: str, sources: tuple[str, str]) -> str:
    """The "What changed" tab's table: the PyTorch line(s), the note, the JAX line(s) that replace them.

    Each paired fragment is shown as the whole line of its cell that holds it, with the cell's indentation and
    without a trailing comment.
    """
    w = WORDS[lang]

    def cell(fragments, source, first):  # one cell of a list-table row: a code block, or a dash for no line
        if not fragments:
            return f"{first}—"
        lines = [next((line for line in source.splitlines() if f in line), f) for f in fragments]
        lines = [re.sub(r"\s+# .*$", "", line) for line in lines]  # the line without its trailing comment
        body = "\n".join(f"    {line}" for line in textwrap.dedent("\n".join(lines)).splitlines())
        return f"{first}```python\n{body}\n    ```"

    body = "\n".join(f"{cell(t, sources[0], '* - ')}\n  - {note}\n{cell(j, sources[1], '  - ')}"
                     for t, j, note in rows)
    return f"""::::{{list-table}}
:header-rows: 1
:widths: 5 3 5
:class: what-changed

* - {tutorial}
  - {w['note']}
  - {w['jax']}
{body}
::::"""


def tab_set(torch_cell, jax_cell, lang: str, rows=()) -> str:
    w = WORDS[lang]
    tutorial = w["tutorial"] if "import torch" in torch_cell.source else w["numpy"]
    left = block(torch_cell.source, stdout(torch_cell), lang)
    right = block(jax_cell.source, stdout(jax_cell), lang)
    changed = f"""
:::::{{tab-item}} {w['changes']}
:sync: changes

{changes(rows, lang, tutorial, (torch_cell.source, jax_cell.source))}
:::::
""" if rows else ""
    return f"""::::::{{tab-set}}
:sync-group: program
:class: programs

:::::{{tab-item}} {tutorial}
:sync: pytorch

{left}
:::::

:::::{{tab-item}} {w['jax']}
:sync: jax

{right}
:::::

:::::{{tab-item}} {w['both']}
:sync: both

::::{{grid}} 1 1 2 2
:gutter: 2
:class-container: side-by-side

:::{{grid-item}}
{block(torch_cell.source, stdout(torch_cell), lang, tutorial)}
:::

:::{{grid-item}}
{block(jax_cell.source, stdout(jax_cell), lang, w['jax'])}
:::
::::
:::::
{changed}::::::
"""


def api_used(nb, documented: set[str]) -> list[str]:
    """The fnnet names a page's code uses (as it writes them), those the API reference has an entry for."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for match in FNNET_NAME.finditer(cell.source):
            module, names = match.group(1), match.group(2)
            found += [f"{module}.{n.strip()}" for n in names.split(",") if n.strip()] if module else [match.group(0)]
    return [name for name in dict.fromkeys(found) if reference.canonical_name(name) in documented]


def page(path: Path, lang: str, documented: set[str]) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    cells = []
    tagged = {t: c for c in nb.cells for t in c.get("metadata", {}).get("tags", []) if c.cell_type == "code"}
    rows = [row for c in nb.cells if c.cell_type == "markdown" for row in pairs(half(c.source, lang))]
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "markdown":
            text = half(cell.source, lang)
            if not cells:  # the title cell: the title, then the links
                title, _, rest = text.partition("\n")
                text = f"{title}\n\n{{download}}`{WORDS[lang]['download']} <notebooks/{path.name}>`\n\n{rest}"
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif "pytorch" in tags:
            cells.append(nbformat.v4.new_markdown_cell(tab_set(cell, tagged["jax"], lang, rows)))
        elif "jax" in tags:
            continue
        else:
            cells.append(cell)
    used = api_used(nb, documented)
    if used:
        links = ", ".join(f"{{py:obj}}`{name}`" for name in used)
        cells.append(nbformat.v4.new_markdown_cell(f"---\n\n{USED[lang]} {links}"))
    nb.cells = cells
    return nb


def guide_page(name: str, lang: str, parser) -> str:
    """A guide page in ``lang``: its translation, or the English page with a note saying so."""
    translated = GUIDE / lang / f"{name}.md" if lang != "en" else GUIDE / f"{name}.md"
    text = (translated if translated.is_file() else GUIDE / f"{name}.md").read_text(encoding="utf-8")
    if not translated.is_file():
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n*{UNTRANSLATED[lang]}*\n{rest}"
    for mark, make in GENERATED.items():
        if mark in text:
            text = text.replace(mark, make(parser))
    return text


def toctree(caption: str, entries) -> str:
    lines = "\n".join(entries)
    return f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n{lines}\n```\n"


def index(lang: str, lessons: list[str]) -> str:
    """The front page: its text, the learning path, then the navigation (lessons of each edition, the guide, the
    API reference, the glossary)."""
    words = CAPTIONS[lang]
    sine = [p for p in lessons if p[3:].startswith("sine_")]
    extras = [p for p in lessons if p[:2] in ("09", "10")]  # not steps of the tutorial
    classic = [p for p in lessons if p not in sine and p not in extras]
    trees = [toctree(words["sine"], sine), toctree(words["classic"], classic), toctree(words["extras"], extras),
             toctree(words["guide"], [f"guide/{name}" for name in GUIDE_PAGES]), toctree(words["api"], ["api/index"]),
             toctree(words["glossary"], ["glossary"])]
    path = half(LEARNING_PATH.read_text(encoding="utf-8"), lang)
    return f"{INDEX[lang].strip()}\n\n{path}\n\n" + "\n".join(trees)


def main(out: Path) -> None:
    from fnnet.cli import build_parser

    shutil.rmtree(out, ignore_errors=True)
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    parser = build_parser()
    documented = reference.documented()
    for lang in LANGS:
        tree = out / lang
        (tree / "notebooks").mkdir(parents=True)
        for path in sources:
            nbformat.write(page(path, lang, documented), tree / path.name)
            shutil.copy(path, tree / "notebooks" / path.name)  # the bilingual original, for download
        (tree / "guide").mkdir()
        for name in GUIDE_PAGES:
            (tree / "guide" / f"{name}.md").write_text(guide_page(name, lang, parser), encoding="utf-8")
        for figure in FIGURES:
            shutil.copy(figure, tree / figure.name)
        reference.write_api(tree, lang)
        (tree / "glossary.md").write_text(half(GLOSSARY.read_text(encoding="utf-8"), lang) + "\n", encoding="utf-8")
        (tree / "index.md").write_text(index(lang, [p.stem for p in sources]), encoding="utf-8")


if __name__ == "__main__":
    import gc

    from fnnet.cli import PROGRAM_GC_THRESHOLD

    gc.set_threshold(*PROGRAM_GC_THRESHOLD)  # a short process importing fnnet, JAX, PyTorch: as the fnnet program
    main(Path(sys.argv[1]))
    gc.freeze()  # the process ends next: its shutdown need not search what it holds for cycles
