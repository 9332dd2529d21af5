"""The built docs site in a real browser (issue 15): math typeset offline, every image loaded, no console errors.

The site is built with ``mkdocs build --strict`` into a temporary directory, served on 127.0.0.1 (a ``file://``
page may not start the search worker) and opened in headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright's Python client, which downloads no browser). Any request that leaves the local server is aborted and
counted, so a CDN dependency fails the test. A screenshot of the tutorial is saved in the test's temporary
directory. The test is skipped only when no Chromium (or Playwright) is installed; ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FINEGRAINED_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Pages with typeset math (each must contain KaTeX output) and the rest that are checked for errors too.
MATH_PAGES = ("tutorial", "chain", "errata", "cli")
OTHER_PAGES = ("", "api", "validation")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
    pytest.importorskip("playwright.sync_api")
    out = tmp_path_factory.mktemp("site")
    # no --quiet: mkdocs 1.6 then drops its warnings before --strict counts them
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def server(site):
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no request log on stderr
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                    args=FLAGS, viewport={"width": 1280, "height": 900})
        yield ctx
        ctx.close()


def _open(browser, base: str, page_name: str):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))

    def only_local(route):
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            problems.append(f"network request: {route.request.url}")
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{base}/{page_name + '/' if page_name else ''}", wait_until="load")
    page.wait_for_function("document.fonts.status === 'loaded'")
    return page, problems


def _visible_text_without_code(page) -> str:
    # the rendered text, minus code blocks (which may quote TeX on purpose) and KaTeX's MathML source annotations
    return page.evaluate("""() => {
        const root = document.body.cloneNode(true);
        root.querySelectorAll('pre, code, annotation, script, style').forEach(e => e.remove());
        return root.innerText;
    }""")


def _check_page(browser, server: str, name: str) -> list[str]:
    """What is wrong with one rendered page (empty when nothing is)."""
    page, problems = _open(browser, server, name)
    try:
        text = _visible_text_without_code(page)
        for raw in ("\\[", "\\]", "\\(", "\\)", "$$"):
            if raw in text:
                problems.append(f"raw math delimiter {raw!r} left in the rendered text")
        left = re.findall(r"\$[^$\n]{1,40}\$", text)
        if left:
            problems.append(f"untypeset inline math {left[:3]}")
        n_math = page.locator(".arithmatex").count()
        n_katex = page.locator(".arithmatex .katex").count()
        if n_katex != n_math:
            problems.append(f"{n_math - n_katex} of {n_math} formulas not typeset")
        if page.locator(".katex-error").count():
            problems.append("KaTeX parse errors")
        if name in MATH_PAGES and n_math == 0:
            problems.append("no math on a page that has formulas")
        images = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.complete, "
                               "i.naturalWidth])")
        broken = [src for src, done, width in images if not done or width == 0]
        if broken:
            problems.append(f"images that did not load: {broken}")
        return problems
    finally:
        page.close()


def test_every_page_renders_offline(browser, server, site):
    pages = sorted(p.parent.relative_to(site).as_posix() for p in site.glob("**/index.html"))
    pages = [("" if p == "." else p) for p in pages if not p.startswith(("search", "assets"))]
    assert set(MATH_PAGES + OTHER_PAGES) <= set(pages) and len(pages) >= 15
    failures = {name or "index": problems for name in pages if (problems := _check_page(browser, server, name))}
    assert not failures, failures


def test_tutorial_screenshot_shows_figures_and_math(browser, server, tmp_path):
    page, problems = _open(browser, server, "tutorial")
    try:
        shot = tmp_path / "tutorial.png"
        page.screenshot(path=str(shot), full_page=True)
        images = page.evaluate("() => [...document.images].filter(i => i.naturalWidth >= 1600).length")
        assert images >= 5  # the five stage figures, slide-ready
        assert shot.stat().st_size > 50_000
        # the KaTeX fonts came from the bundled woff2 files, not a system fallback
        assert page.evaluate("() => [...document.fonts].some(f => f.family.includes('KaTeX') && "
                             "f.status === 'loaded')")
        assert not problems, problems
        print(f"screenshot: {shot}")
    finally:
        page.close()
