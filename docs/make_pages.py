"""Write the site's two source trees, ``en/`` and ``zh/``, from the committed executed notebooks.

Usage: python docs/make_pages.py OUT   (docs/build.sh calls it; nothing is executed again)

Each notebook's markdown cells hold English, a ``<!-- zh -->`` line, then
Chinese: a tree keeps its own half. The two program cells (tagged ``pytorch``
and ``jax``) become one tab set, PyTorch | JAX | side by side, with each
program's printed output under it; every other cell stays as it is, outputs
and plots included. Each page links to the same page in the other language and
to the full bilingual notebook.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LANGS = ("en", "zh")
OTHER = {"en": ("zh", "中文", "zh-CN"), "zh": ("en", "English", "en")}
WORDS = {
    "en": {"output": "Output", "both": "Side by side", "download": "Download this notebook (.ipynb, both languages)",
           "tutorial": "PyTorch", "numpy": "NumPy", "jax": "JAX"},
    "zh": {"output": "输出", "both": "并排对照", "download": "下载这个笔记本（.ipynb，中英双语）",
           "tutorial": "PyTorch", "numpy": "NumPy", "jax": "JAX"},
}
INDEX = {
    "en": """# fnnet: Learning PyTorch with Examples, the JAX way

The tutorial's two-layer ReLU network on random data, rebuilt lesson by lesson. Every lesson page puts the tutorial's
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

教程里那个在随机数据上训练的两层 ReLU 网络，一课一课地用 JAX 重新实现。每一课的页面都把教程的 PyTorch 程序和做同样事情的纯 JAX 程序
放在一起，然后让两者从同一个起点出发运行，证明它们算出的损失相同。

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


def tab_set(torch_cell, jax_cell, lang: str) -> str:
    w = WORDS[lang]
    tutorial = w["tutorial"] if "import torch" in torch_cell.source else w["numpy"]
    left = block(torch_cell.source, stdout(torch_cell), lang)
    right = block(jax_cell.source, stdout(jax_cell), lang)
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
::::::
"""


def switch(page: str, lang: str) -> str:
    other, label, code = OTHER[lang]
    return (f'<p class="lang-switch"><a class="lang-link" href="../{other}/{page}.html" hreflang="{code}" '
            f'lang="{code}">{label}</a></p>')


def page(path: Path, lang: str) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    cells = []
    tagged = {t: c for c in nb.cells for t in c.get("metadata", {}).get("tags", []) if c.cell_type == "code"}
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "markdown":
            text = half(cell.source, lang)
            if not cells:  # the title cell: the title, then the links
                title, _, rest = text.partition("\n")
                text = (f"{title}\n\n{switch(path.stem, lang)}\n\n"
                        f"{{download}}`{WORDS[lang]['download']} <notebooks/{path.name}>`\n\n{rest}")
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif "pytorch" in tags:
            cells.append(nbformat.v4.new_markdown_cell(tab_set(cell, tagged["jax"], lang)))
        elif "jax" in tags:
            continue
        else:
            cells.append(cell)
    nb.cells = cells
    return nb


def main(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for lang in LANGS:
        tree = out / lang
        (tree / "notebooks").mkdir(parents=True)
        for path in sources:
            nbformat.write(page(path, lang), tree / path.name)
            shutil.copy(path, tree / "notebooks" / path.name)  # the bilingual original, for download
        toc = "\n".join(p.stem for p in sources)
        (tree / "index.md").write_text(
            f"{INDEX[lang].strip()}\n\n{switch('index', lang)}\n\n```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n",
            encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
