"""Sphinx configuration for the fnnet site; docs/build.sh runs it once per language (FNNET_DOCS_LANG=en|zh)."""

import os

LANG = os.environ.get("FNNET_DOCS_LANG", "en")
if LANG not in ("en", "zh"):
    raise ValueError(f"FNNET_DOCS_LANG must be en or zh, got {LANG!r}")

project = "fnnet"
author = "fnnet"
copyright = "fnnet authors"
language = "en" if LANG == "en" else "zh_CN"
html_search_language = "en" if LANG == "en" else "zh"  # zh segments words with jieba
html_title = "fnnet · Learning PyTorch with Examples, the JAX way" if LANG == "en" else "fnnet · 用 JAX 重写 PyTorch 教程"

extensions = ["myst_nb", "sphinx_design", "sphinx_copybutton"]
nb_execution_mode = "off"  # the committed notebooks already hold their outputs
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget scripts from a CDN
myst_enable_extensions = ["colon_fence"]
exclude_patterns = ["notebooks/**", "**.ipynb_checkpoints"]

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
}
copybutton_exclude = ".linenos, .gp, .go"
