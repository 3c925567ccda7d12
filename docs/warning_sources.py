"""Sphinx's warnings name the generated copy under ``docs/_build/src``: name the file a person edits instead.

``docs/build.sh`` pipes the build's output through this: ``05_nn.ipynb`` in either tree
becomes ``notebooks/05_nn.md``, a guide page ``docs/guide/NAME.md`` (or its ``zh/``
translation), the front page and the glossary their ``notebooks/`` sources.

Examples:
  >>> source_of("/r/docs/_build/src/zh/05_nn.ipynb:31: WARNING: undefined label")
  'notebooks/05_nn.md (zh page):31: WARNING: undefined label'
  >>> source_of("/r/docs/_build/src/en/guide/speed.md:4: WARNING: x")
  'docs/guide/speed.md (en page):4: WARNING: x'
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
GENERATED = re.compile(r"[^\s:]*_build/src/(en|zh)/([^\s:]+)")
FRONT = {"index": "notebooks/index.md", "glossary": "notebooks/glossary.md"}


def _source(lang: str, page: str) -> str:
    stem = page.rsplit(".", 1)[0]
    if re.fullmatch(r"\d\d_\w+", stem):
        return f"notebooks/{stem}.md"
    if stem in FRONT:
        return FRONT[stem]
    if stem.startswith("guide/"):
        name = stem.removeprefix("guide/")
        translated = lang == "zh" and (DOCS / "guide" / "zh" / f"{name}.md").is_file()
        return f"docs/guide/{'zh/' if translated else ''}{name}.md"
    return f"docs/_build/src/{lang}/{page} (generated: docs/make_pages.py or docs/reference.py)"


def source_of(line: str) -> str:
    """``line`` with every generated path replaced by its source and the tree it came from."""
    return GENERATED.sub(lambda m: f"{_source(m.group(1), m.group(2))} ({m.group(1)} page)", line)


if __name__ == "__main__":
    for text in sys.stdin:
        sys.stderr.write(source_of(text))
