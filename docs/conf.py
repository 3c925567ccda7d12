"""Sphinx configuration for the fnnet site; docs/build.sh runs it once per language (FNNET_DOCS_LANG=en|zh).

The source trees are written by docs/make_pages.py: the lessons (from the executed notebooks), the guide
(docs/guide) and the API reference (docs/reference.py: autodoc + autosummary + napoleon over the docstrings).
Nothing is fetched from another host: no intersphinx, links to JAX, optax and flax are plain URLs.
"""

import atexit
import gc
import inspect
import itertools
import os
import re
import sys

from sphinx.ext import autosummary
from sphinx.util import logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import canonical_name  # noqa: E402  (docs/reference.py: the API reference's rules)

from fnnet.cli import PROGRAM_GC_THRESHOLD  # noqa: E402

# A build keeps every page's doctree alive: Python's full garbage collections walked them all, 13 times per
# build and 2.6 of its 15 s (gc.callbacks). With the young generations collected less often no full collection
# comes due, and the build's peak memory stays where it was (510 MB, 508 before). One more came as the process
# ended, in Python's shutdown (about 1.6 s of a 16 s build, perf, 2026-12-06): frozen at exit, what the build
# holds is freed without that search, as in the fnnet program (fnnet.cli.program).
gc.set_threshold(*PROGRAM_GC_THRESHOLD)
atexit.register(gc.freeze)

LANG = os.environ.get("FNNET_DOCS_LANG", "en")
if LANG not in ("en", "zh"):
    raise ValueError(f"FNNET_DOCS_LANG must be en or zh, got {LANG!r}")
OTHER = {"en": ("zh", "中文", "zh-CN"), "zh": ("en", "English", "en")}

project = "fnnet"
author = "fnnet"
copyright = "fnnet authors"
language = "en" if LANG == "en" else "zh_CN"
html_search_language = "en" if LANG == "en" else "zh"  # zh segments words with jieba
# Sphinx loads jieba's own dictionary a second time as a user dictionary (349,046 words, 2.6 s of every zh
# build) unless told which to load: an empty name loads none, and jieba segments with its own dictionary alone
html_search_options = {"dict": ""} if LANG == "zh" else {}
html_title = "fnnet · Learning PyTorch with Examples, the JAX way" if LANG == "en" else "fnnet · 用 JAX 重写 PyTorch 教程"

extensions = ["myst_nb", "sphinx_design", "sphinx_copybutton",
              "sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon"]
nb_execution_mode = "off"  # the committed notebooks already hold their outputs
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget scripts from a CDN
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["notebooks/**", "**.ipynb_checkpoints"]

# The API reference: docs/reference.py writes one page per public module (and one for the names of `fnnet`
# itself); autosummary only draws the tables, it generates no pages.
autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False  # torch.autograd.Function's own docstrings point into torch's docs
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as a field list, not a second entry beside autodoc's own
napoleon_use_rtype = False

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["fnnet.css"]
html_js_files = ["fnnet-tabs.js"]
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "secondary_sidebar_items": [],
    "navigation_with_keys": False,
    "collapse_navbar": True,  # the sidebar holds the open branch only: the whole tree on every page cost seconds
}
copybutton_exclude = ".linenos, .gp, .go"
html_search_scorer = "_static/fnnet-scorer.js"  # an API name typed as it is written ranks first

log = logging.getLogger("fnnet")


def language_link(app, pagename, templatename, context, doctree):
    """Every page links, after its title, to the same page in the other language's tree."""
    del app, templatename, doctree
    body = context.get("body")
    if not body or "</h1>" not in body:
        return  # search, genindex: the theme's pages, no title of ours
    other, label, code = OTHER[LANG]
    href = "../" * (pagename.count("/") + 1) + f"{other}/{pagename}.html"
    link = (f'<p class="lang-switch"><a class="lang-link" href="{href}" hreflang="{code}" lang="{code}">'
            f"{label}</a></p>")
    context["body"] = body.replace("</h1>", "</h1>\n" + link, 1)


def alias_reference(app, env, node, contnode):
    """A ``fnnet.*`` name written the way users import it resolves to its one documented entry.

    In the guide and the lessons, a ``fnnet.*`` name that resolves to nothing is a warning (an error
    under ``-W``), so a renamed or moved function cannot leave a dead name in the prose.
    """
    if node.get("refdomain") != "py" or not node["reftarget"].startswith("fnnet"):
        return None
    target, domain = node["reftarget"], env.get_domain("py")
    canonical = canonical_name(target)
    if canonical and canonical != target:
        found = domain.resolve_any_xref(env, node["refdoc"], app.builder, canonical, node, contnode)
        if found:
            return found[0][1]
    if not node["refdoc"].startswith("api/"):
        log.warning("%s: no API entry for %s", node["refdoc"], target, location=node)
    return None


FNNET_NAME = re.compile(r"``(fnnet(?:\.\w+)+)``")
FIELD_ALIAS = re.compile(r"Alias for field number \d+")
documenting = {}  # the class whose members autodoc is documenting now (its docstring comes before its members)


def field_comment(cls, field: str) -> list[str]:
    """The comment written after a NamedTuple field (``step: int  # steps taken so far``), as its doc."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return []
    found = re.search(rf"^\s+{re.escape(field)}\s*:[^#\n]*#\s*(.+)$", source, re.M)
    return [found.group(1).strip()] if found else []


def field_docs(app, what, name, obj, options, lines):
    """A NamedTuple field's doc is the comment beside it in the source, not "Alias for field number 0"."""
    del app, options
    if what == "class":
        documenting["class"] = obj
    elif lines and FIELD_ALIAS.fullmatch(" ".join(lines).strip()):
        lines[:] = field_comment(documenting.get("class"), name.rpartition(".")[2])


def skip_described_fields(app, what, name, obj, skip, options):
    """Fields the class docstring's "Attributes:" already describes get no second, empty entry."""
    del app, what, name, skip, options
    described = "Attributes:" in (inspect.getdoc(documenting.get("class")) or "")
    if type(obj).__name__ == "_tuplegetter" and described:
        return True
    return None


def docstring_text(app, what, name, obj, options, lines):
    """A docstring's prose as reStructuredText: ``|a - b|`` is an absolute value, not a substitution, and
    ``fnnet.x.y`` written as code becomes a link to its entry (``alias_reference`` finds moved names)."""
    del app, what, name, obj, options
    in_example = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        in_example = stripped.startswith((">>>", "...")) or (in_example and bool(stripped))
        if in_example:
            continue
        if "|" in line:
            pieces = line.split("``")  # the odd pieces are inline literals, where a backslash stays a backslash
            line = "``".join(p if k % 2 else p.replace("|", "\\|") for k, p in enumerate(pieces))
        lines[i] = FNNET_NAME.sub(r":py:obj:`\1`", line)


_extract_summary = autosummary.extract_summary


def extract_summary(doc, document):
    """Sphinx 8.2.3 checks the whole docstring, not the sentence it cut, so it can cut inside ``a . b``."""
    summary = _extract_summary(doc, document)
    if summary.count("``") % 2:
        paragraph = itertools.takewhile(str.strip, itertools.dropwhile(lambda line: not line.strip(), doc))
        summary = " ".join(line.strip() for line in paragraph)
    return summary


autosummary.extract_summary = extract_summary


def setup(app):
    app.connect("html-page-context", language_link)
    app.connect("missing-reference", alias_reference)
    app.connect("autodoc-process-docstring", docstring_text)
    app.connect("autodoc-process-docstring", field_docs)
    app.connect("autodoc-skip-member", skip_described_fields)
    return {"parallel_read_safe": True}
