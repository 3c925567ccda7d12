"""The site, read in a real browser.

``bash docs/build.sh`` builds the committed notebooks, the user guide and the
API reference into ``docs/_build/html`` (``en/`` and ``zh/``), with the Python
running these tests (``PYTHON``), not whichever ``python`` is first on ``PATH``;
the site is served on 127.0.0.1 and driven with headless Chromium (Debian's
``chromium`` through playwright), one browser for every page check. Without
Sphinx, playwright or Chromium these tests skip, except under ``CI``, where a
missing tool is an error.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "docs" / "_build" / "html"
SHOTS = ROOT / "docs" / "_build" / "screenshots"
PAGES = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
LESSONS = [p for p in PAGES if "01" <= p[:2] <= "08" or "11" <= p[:2] <= "18"]  # the two editions' lesson pages
PAGE_LESSON = {  # a lesson page's number -> the fnnet.LESSONS id it teaches (as tests/test_pages.py has it)
    "01": "numpy", "02": "tensors", "03": "autograd", "04": "custom_function",
    "05": "nn", "06": "optim", "07": "custom_module", "08": "control_flow",
    "11": "sine_numpy", "12": "sine_tensors", "13": "sine_autograd", "14": "sine_custom_function",
    "15": "sine_nn", "16": "sine_optim", "17": "sine_custom_module", "18": "sine_control_flow",
}
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TITLES = {"en": "06 · optim", "zh": "06 · optim（优化器）"}
GUIDE = sorted(p.stem for p in (ROOT / "docs" / "guide").glob("*.md"))
THEIRS = {"search", "genindex", "py-modindex"}  # Sphinx's own pages: no title of ours, no language link
BUILD_SECONDS = 120  # both languages, on 2 cores


def require(what: str, present) -> None:
    if not present:
        if IN_CI:
            pytest.fail(f"{what} is missing; under CI that is an error, not a skip")
        pytest.skip(f"{what} is not installed")


def build_env() -> dict[str, str]:
    """build.sh's environment: PYTHON is this interpreter, and PATH leads to no environment's python, so a
    build that used the first python on PATH instead (an editor's test runner, no activated venv) fails here."""
    here = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and d not in here]
    return {**os.environ, "PYTHON": sys.executable, "PATH": os.pathsep.join(path)}


@pytest.fixture(scope="module")
def built():
    """Build the site once for this module; returns the seconds the build took."""
    for module in ("sphinx", "myst_nb", "sphinx_book_theme", "sphinx_design", "sphinx_copybutton", "jieba", "torch"):
        require(f"{module} (pip install -e '.[docs]')", importlib.util.find_spec(module))
    start = time.perf_counter()
    done = subprocess.run(["bash", str(ROOT / "docs" / "build.sh")], capture_output=True, text=True, timeout=600,
                          env=build_env())
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return seconds


def site_pages(lang: str) -> set[str]:
    """Every page of one language's tree, as its path without ``.html`` (``guide/command``, ``api/fnnet``)."""
    tree = SITE / lang
    return {str(p.relative_to(tree).with_suffix("")) for p in tree.rglob("*.html")
            if not p.relative_to(tree).parts[0].startswith("_")} - THEIRS


@pytest.fixture(scope="module")
def server(built):
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        del args


class Browser:
    """One Chromium page for all the checks, recording every request, failed response and page error."""

    def __init__(self, playwright, base: str):
        self.base = base
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        self.context = self.browser.new_context(viewport={"width": 1400, "height": 900})
        self.requests: list[str] = []
        self.failures: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.context.on("response", lambda r: self.failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        self.page = self.new_page()

    def new_page(self, width: int = 1400):
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": 900})
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def go(self, path: str, page=None):
        page = page or self.page
        page.goto(f"{self.base}/{path}", wait_until="load")
        return page


@pytest.fixture(scope="module")
def browser(server):
    require("playwright (pip install -e '.[docs]')", importlib.util.find_spec("playwright"))
    require("Chromium (apt-get install chromium)", CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        b = Browser(playwright, server)
        yield b
        b.browser.close()


# ---------------------------------------------------------------- the files


def test_site_builds_both_languages_within_two_minutes(built):
    print(f"site built in {built:.1f} s")
    assert built < BUILD_SECONDS, f"docs/build.sh took {built:.0f} s"
    en, zh = site_pages("en"), site_pages("zh")
    assert en == zh, f"pages in one language only: {sorted(en ^ zh)}"
    expected = {"index", *PAGES, *(f"guide/{g}" for g in GUIDE), "api/index", "api/fnnet", "api/fnnet.training.fit"}
    assert expected <= en, f"missing pages: {sorted(expected - en)}"
    for lang, attr in (("en", "en"), ("zh", "zh-CN")):
        for name in sorted(en):
            html = (SITE / lang / f"{name}.html").read_text(encoding="utf-8")
            assert re.search(rf'<html[^>]*\blang="{attr}"', html), f"{lang}/{name}.html: html lang is not {attr}"
            other = "zh" if lang == "en" else "en"
            back = "../" * (name.count("/") + 1)
            assert f'href="{back}{other}/{name}.html"' in html, f"{lang}/{name}.html links to no {other} page"
    assert (SITE / "index.html").is_file()


def test_navigation_holds_lessons_guide_api_reference_and_glossary(built):
    """The sidebar's sections, in both languages."""
    captions = {"en": ["Lessons: the sine edition (start here)", "Lessons: the classic edition", "Extras", "Guide",
                       "API reference", "Glossary"],
                "zh": ["课程：正弦版（从这里开始）", "课程：经典版", "附加内容", "使用指南", "API 参考", "术语表"]}
    for lang, expected in captions.items():
        html = (SITE / lang / "index.html").read_text(encoding="utf-8")
        found = re.findall(r'<p aria-level="2" class="caption" role="heading"><span class="caption-text">([^<]*)<', html)
        assert found[:6] == expected, found
        for name in GUIDE:
            assert f'href="guide/{name}.html"' in html, f"{lang}/index.html: no link to guide/{name}"
        assert 'href="api/index.html"' in html


def _article(html: str) -> str:
    """A page's own text, without the sidebar's navigation."""
    return html[html.index("<article"):html.index("</article>")]


def test_the_front_page_is_a_learning_path_and_the_glossary_a_page(built):
    """notebooks/index.md on the front page: the sine track first, then the classic one, 09 and 10 after them as
    extras, each lesson's original file linked; notebooks/glossary.md as a page whose links land on lessons."""
    from fnnet import LESSONS as RECORDS

    sine, classic = [p for p in LESSONS if p[:2] > "10"], [p for p in LESSONS if p[:2] < "09"]
    for lang in ("en", "zh"):
        body = _article((SITE / lang / "index.html").read_text(encoding="utf-8"))
        linked = list(dict.fromkeys(re.findall(r'href="(\d\d_\w+)\.html"', body)))
        assert linked == sine + classic + ["09_jit", "10_your_model"], linked
        for stem in LESSONS:
            assert RECORDS[PAGE_LESSON[stem[:2]]].tutorial in body, f"{lang}: the original of {stem}"
        assert 'href="glossary.html"' in body
        glossary = _article((SITE / lang / "glossary.html").read_text(encoding="utf-8"))
        targets = set(re.findall(r'href="(\d\d_\w+\.html)"', glossary))
        assert len(re.findall(r"<tr", glossary)) > 20 and targets, "the glossary's table links the lessons"
        assert all((SITE / lang / target).is_file() for target in targets), targets


def test_every_public_name_has_one_api_entry(built):
    """fnnet's own names as fnnet.NAME and nowhere else; every public module at its own path (not an old alias)."""
    import importlib
    import inspect
    import pkgutil

    import fnnet
    from sphinx.util.inventory import InventoryFile

    shared = {n: getattr(fnnet, n) for n in fnnet.__all__ if not inspect.ismodule(getattr(fnnet, n))}
    public = ["fnnet"] + [m.name for m in pkgutil.walk_packages(fnnet.__path__, "fnnet.")
                          if not any(part.startswith("_") for part in m.name.split("."))]
    for lang in ("en", "zh"):
        with open(SITE / lang / "objects.inv", "rb") as f:
            inventory = InventoryFile.load(f, "", lambda base, uri: uri)
        objects = {name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries}
        modules = set(inventory.get("py:module", {}))
        assert {f"fnnet.{n}" for n in shared} <= objects, sorted({f"fnnet.{n}" for n in shared} - objects)
        assert set(public) <= modules, sorted(set(public) - modules)
        assert not {f"fnnet.{old}" for old in fnnet.MOVED} & modules, "an old alias documented as a module"
        uris = {name: entries[name].uri for kind, entries in inventory.items() if kind.startswith("py:")
                for name in entries}
        for name, uri in uris.items():  # autodoc's canonical aliases point at the one entry; a second page would not
            module, _, attr = name.rpartition(".")
            if module in modules and attr in shared and uri != uris[f"fnnet.{attr}"]:
                again = getattr(importlib.import_module(module), attr, None) is shared[attr]
                assert not again, f"fnnet.{attr} has a second entry: {name} at {uri}"


def test_readme_is_the_front_door():
    """The README stays short, holds CI's test command verbatim, and points into every guide page."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200, f"README.md has {len(readme.splitlines())} lines"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in readme.splitlines(), f"README.md lacks CI's test command: {ci}"
    for name in GUIDE:
        assert f"](docs/guide/{name}.md" in readme, f"README.md links to no guide page {name}"


# ---------------------------------------------------------------- in the browser


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_page_shows_its_plot(browser, lang):
    for name in PAGES:
        page = browser.go(f"{lang}/{name}.html")
        images = page.locator(".cell_output img")
        assert images.count() >= 1, f"{lang}/{name}: no plot"
        for i in range(images.count()):
            decoded = images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
            assert decoded, f"{lang}/{name}: image {i} did not decode"
        if name in LESSONS:
            assert page.locator(".sd-tab-set.programs").count() == 1, f"{lang}/{name}: no program tab set"
        link = page.locator("a.lang-link")
        assert link.count() == 1 and link.get_attribute("href") == f"../{'zh' if lang == 'en' else 'en'}/{name}.html"


def _visible_code(page) -> list[str]:
    """The first line of every visible program in the tab set (PyTorch and/or JAX), after its marker line
    (``# fnnet: NN_name tag``, which lets the proof find the cell in a kernel's history)."""
    return page.evaluate("""() => [...document.querySelectorAll('.sd-tab-set.programs .highlight-python pre')]
        .filter(pre => pre.offsetParent !== null)
        .map(pre => pre.innerText.split('\\n').find(line => !line.startsWith('# fnnet: ')))""")


def _checked(page) -> str:
    return page.evaluate("""() => {
        const input = document.querySelector('.sd-tab-set.programs > input:checked');
        return input.nextElementSibling.dataset.syncId; }""")


def test_tabs_default_side_by_side_switch_and_hold_across_pages(browser):
    page = browser.go("en/06_optim.html")
    page.evaluate("() => localStorage.clear()")
    page.reload(wait_until="load")
    assert _checked(page) == "both"  # a wide screen with no stored choice: both programs
    both = _visible_code(page)
    assert len(both) == 2 and both[0] == "import torch" and both[1] != "import torch", both
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "en-06_optim.png"), full_page=False)

    page.locator('.sd-tab-set.programs > label[data-sync-id="jax"]').click()
    assert _checked(page) == "jax"
    shown = _visible_code(page)
    assert len(shown) == 1 and shown != ["import torch"], shown

    page = browser.go("en/07_custom_module.html")  # the choice holds on the next page
    assert _checked(page) == "jax"
    assert len(_visible_code(page)) == 1
    page = browser.go("zh/08_control_flow.html")  # and in the other language
    assert _checked(page) == "jax"
    page = browser.go("en/13_sine_autograd.html")  # and in the sine edition
    assert _checked(page) == "jax"

    page.locator('.sd-tab-set.programs > label[data-sync-id="pytorch"]').click()
    page = browser.go("en/02_tensors.html")
    assert _checked(page) == "pytorch" and _visible_code(page) == ["import torch"]

    narrow = browser.new_page(width=700)  # no stored choice, narrow: the first tab
    browser.go("en/06_optim.html", narrow)
    narrow.evaluate("() => localStorage.clear()")
    narrow.reload(wait_until="load")
    assert _checked(narrow) == "pytorch"
    narrow.close()
    page.evaluate("() => localStorage.clear()")


def test_what_changed_tab_pairs_the_lines_of_the_two_programs(browser):
    """The programs' fourth tab: one row per pair of the page's "What changed" cell (tests/test_pages.py checks that
    each paired line is in its cell), the PyTorch line(s), the note, the JAX line(s), in both languages."""
    from test_pages import pairs, section

    for lang, stem in (("en", "03_autograd"), ("zh", "15_sine_nn")):
        page = browser.go(f"{lang}/{stem}.html")
        page.locator('.sd-tab-set.programs > label[data-sync-id="changes"]').click()
        assert _checked(page) == "changes"
        table = page.locator("table.what-changed").first
        assert table.is_visible()
        expected = pairs(section(stem, "What changed")[0 if lang == "en" else 1])
        rows = table.locator("tbody tr")
        assert rows.count() == len(expected), (rows.count(), len(expected))
        for i, (torch_lines, jax_lines, note) in enumerate(expected):
            text = rows.nth(i).inner_text()
            assert all(line in text for line in torch_lines + jax_lines), (text, torch_lines, jax_lines)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(".sd-tab-set.programs").first.screenshot(path=str(SHOTS / f"{lang}-{stem}-what-changed.png"))
    page = browser.go("en/index.html")
    page.screenshot(path=str(SHOTS / "en-index.png"), full_page=True)
    page.evaluate("() => localStorage.clear()")


def test_language_link_lands_on_the_same_lesson(browser):
    page = browser.go("en/06_optim.html")
    page.locator("a.lang-link").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/zh/06_optim.html")
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    assert page.locator("h1").first.inner_text().startswith(TITLES["zh"])
    page.locator("a.lang-link").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/en/06_optim.html")
    assert page.locator("h1").first.inner_text().startswith(TITLES["en"])


def test_chinese_glyphs_render(browser):
    page = browser.go("zh/06_optim.html")
    page.evaluate("() => localStorage.clear()")
    page.reload(wait_until="load")
    # Draw characters in the page's own font: two different Chinese characters must give two different
    # pictures, and neither may look like a character no font has (a private-use code point: a box).
    pictures = page.evaluate("""() => {
        const family = getComputedStyle(document.querySelector('h1')).fontFamily;
        const draw = (s) => { const c = document.createElement('canvas'); c.width = 120; c.height = 60;
            const g = c.getContext('2d'); g.font = '44px ' + family; g.fillText(s, 4, 48); return c.toDataURL(); };
        return {wei: draw('权'), zhong: draw('重'), box: draw('\\uE000')}; }""")
    assert pictures["wei"] != pictures["zhong"], "two Chinese characters render alike: missing glyphs"
    assert pictures["box"] not in (pictures["wei"], pictures["zhong"]), "Chinese renders as missing-glyph boxes"
    # And the font Chromium actually used for the first Chinese paragraph is a CJK font.
    found = page.evaluate("""() => { const p = [...document.querySelectorAll('article p')].find(p => [...p.childNodes]
        .some(n => n.nodeType === Node.TEXT_NODE && /[\u4e00-\u9fff]/.test(n.textContent)));
        if (p) p.id = 'cjk-probe'; return !!p; }""")
    assert found, "no paragraph of Chinese text"
    selector = "#cjk-probe"
    cdp = browser.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    paragraph = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": paragraph})["fonts"]
    cdp.detach()
    assert any(re.search(r"CJK|WenQuanYi|Hei|Han Sans", f["familyName"]) and f["glyphCount"] > 0 for f in fonts), fonts
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "zh-06_optim.png"), full_page=False)


@pytest.mark.parametrize(("lang", "query", "expected"), [
    ("en", "custom_vjp", "04_custom_function.html"),
    ("zh", "权重", "05_nn.html"),
    ("en", "LegendrePolynomial3", "14_sine_custom_function.html"),
])
def test_search_finds_the_word(browser, lang, query, expected):
    page = browser.go(f"{lang}/search.html?q={query}")
    page.wait_for_selector("#search-results ul.search li a", timeout=20_000)
    found = page.locator("#search-results ul.search li a").evaluate_all("links => links.map(a => a.href)")
    assert any(expected in href for href in found), found


def _search(browser, lang: str, query: str) -> list[str]:
    page = browser.go(f"{lang}/search.html?q={query}")
    page.wait_for_selector("#search-results ul.search li a", timeout=20_000)
    return page.locator("#search-results ul.search li a").evaluate_all("links => links.map(a => a.href)")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_search_finds_fnnet_fit_and_lands_on_its_api_entry(browser, lang):
    found = _search(browser, lang, "fnnet.fit")
    entry = [href for href in found if href.endswith("#fnnet.fit")]
    assert entry and entry[0] == found[0], found[:5]  # the first result is the function itself
    page = browser.page
    page.locator("#search-results ul.search li a").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/{lang}/api/fnnet.html#fnnet.fit"), page.url
    signature = page.locator('dt[id="fnnet.fit"]')
    assert signature.count() == 1 and signature.is_visible()
    assert "fnnet.fit(" in signature.inner_text().replace("\n", "")
    assert signature.evaluate("dt => dt.getBoundingClientRect().top") < 900  # scrolled to it
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{lang}-api-fit.png"), full_page=False)
    if lang == "en":
        browser.go(f"{lang}/search.html?q=fit").wait_for_selector("#search-results ul.search li a", timeout=20_000)
        browser.page.screenshot(path=str(SHOTS / f"{lang}-search-fit.png"), full_page=False)


@pytest.mark.parametrize(("lang", "query", "ending"), [
    ("en", "fit", "#fnnet.fit"),
    ("zh", "fit", "#fnnet.fit"),
    ("en", "Model", "#fnnet.Model"),
    ("zh", "Model", "#fnnet.Model"),
    ("en", "from_torch", ".from_torch"),
    ("zh", "from_torch", ".from_torch"),
])
def test_search_finds_api_names(browser, lang, query, ending):
    found = _search(browser, lang, query)
    assert any(href.endswith(ending) and f"/{lang}/api/" in href for href in found), found[:8]


def test_command_page_lists_every_subcommand_and_flag_the_parser_has(browser):
    import argparse

    from fnnet.cli import build_parser

    parser = build_parser()
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert subparsers, "the parser has no subcommands"
    commands = {name: sub for action in subparsers for name, sub in action.choices.items()}
    for lang in ("en", "zh"):
        page = browser.go(f"{lang}/guide/command.html")
        headings = page.locator("section h3").evaluate_all("hs => hs.map(h => h.innerText.replace('#', '').trim())")
        listed = [h.removeprefix("fnnet ") for h in headings if h.startswith("fnnet ")]
        assert listed == list(commands), (listed, list(commands))
        for name, sub in commands.items():
            section = page.locator(f'section[id="fnnet-{name}"]')
            text = section.inner_text()
            flags = [o for a in sub._actions if not isinstance(a, argparse._HelpAction) for o in a.option_strings]
            missing = [flag for flag in flags if flag not in text]
            assert not missing, f"{lang}: fnnet {name}: {missing} not on the page"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_guide_pages_render_and_link_into_the_api(browser, lang):
    for name in GUIDE:
        page = browser.go(f"{lang}/guide/{name}.html")
        assert page.locator("article h1").count() == 1, f"{lang}/guide/{name}: not one title"
        link = page.locator("a.lang-link")
        assert link.count() == 1 and link.get_attribute("href") == f"../../{'zh' if lang == 'en' else 'en'}/guide/{name}.html"
        for i in range(page.locator("article img").count()):
            assert page.locator("article img").nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    page = browser.go(f"{lang}/guide/getting-started.html")
    assert page.locator('article a[href*="api/fnnet.html#fnnet.fit"]').count() >= 1, "the guide links to no API entry"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{lang}-guide-getting-started.png"), full_page=False)
    page = browser.go(f"{lang}/06_optim.html")  # a lesson links the fnnet names it uses to their entries
    assert page.locator('article a[href^="api/fnnet.parity"][href$=".prove"]').count() >= 1


def test_no_page_error_no_failed_response_no_request_off_localhost(browser):
    assert browser.requests, "no request was recorded"
    hosts = {urlparse(url).hostname for url in browser.requests if not url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, hosts
    assert not browser.errors, browser.errors
    assert not browser.failures, browser.failures


def test_a_build_warning_names_the_file_to_edit():
    import importlib.util

    spec = importlib.util.spec_from_file_location("warning_sources", ROOT / "docs" / "warning_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    line = f"{ROOT}/docs/_build/src/zh/13_sine_autograd.ipynb:40009: WARNING: Duplicate explicit target name"
    assert module.source_of(line) == "notebooks/13_sine_autograd.md (zh page):40009: WARNING: Duplicate explicit target name"
    assert module.source_of("/x/docs/_build/src/zh/guide/getting-started.md:3: W").startswith(
        "docs/guide/zh/getting-started.md (zh page)")  # translated
    assert module.source_of("/x/docs/_build/src/zh/guide/speed.md:3: W").startswith("docs/guide/speed.md (zh page)")
    assert module.source_of("/x/docs/_build/src/en/glossary.md:1: W").startswith("notebooks/glossary.md")
    assert "warning_sources.py" in (ROOT / "docs" / "build.sh").read_text()
