"""The built book in a real browser (headless Debian Chromium), page by page, as a student meets it offline.

Every page: loads with no console error and no request leaving 127.0.0.1; every same-site link answers 200 and
its anchor exists; every image has pixels; every copy button puts its code block on the clipboard; every solution
is hidden until its toggle is clicked. Screenshots of the home page, an exercise with its solution open and the
tunnel lesson go to $ARTIFACTS_DIR (default artifacts/screenshots).
"""
from __future__ import annotations

import contextlib
import re
import urllib.error
import urllib.request
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

from harness.browser import ROOT, open_page, toc_pages

pytestmark = pytest.mark.browser

PAGES = toc_pages()
MAX_COPY_CHECKS = 12  # code blocks per page whose copy button is clicked


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name in ("id", "name") and value)


@lru_cache(maxsize=None)
def fetch(url: str) -> tuple[int, frozenset[str]]:
    """HTTP status of a same-site URL and, for HTML, the ids its anchors can point at."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (always http://127.0.0.1)
            body = answer.read()
            kind = answer.headers.get_content_type()
            status = answer.status
    except urllib.error.HTTPError as err:
        return err.code, frozenset()
    parser = _Ids()
    if kind == "text/html":
        parser.feed(body.decode("utf-8", "replace"))
    return status, frozenset(parser.ids)


@contextlib.contextmanager
def opened(browser_context, url: str):  # noqa: ANN001, ANN201 (Playwright objects)
    """A new tab at `url` and what its load met (harness.browser.open_page), closed afterwards, pass or fail."""
    page, visit = open_page(browser_context, url)
    try:
        yield page, visit
    finally:
        page.close()


@pytest.fixture(params=PAGES)
def book_page(request: pytest.FixtureRequest, browser_context, book_server):  # noqa: ANN001, ANN201
    """Each page of the book (its HTML path), opened in a new tab of the served book: (path, page, visit)."""
    with opened(browser_context, book_server.url + request.param) as (page, visit):
        yield request.param, page, visit


def test_the_book_has_pages() -> None:
    assert PAGES, f"no pages found in {ROOT / '_toc.yml'}"


def test_page_loads_offline_without_console_errors(book_page) -> None:  # noqa: ANN001
    page_path, page, visit = book_page
    assert visit.status == 200, f"{page_path}: HTTP {visit.status}"
    assert not visit.outside_requests, f"{page_path} asks the internet for: {visit.outside_requests}"
    assert not visit.console_errors, f"{page_path}: console errors: {visit.console_errors}"
    assert not visit.failed_requests, f"{page_path}: requests failed: {visit.failed_requests}"
    assert page.locator("main h1").count() >= 1, f"{page_path} has no title"


def test_links_resolve_and_images_load(book_page, book_server) -> None:  # noqa: ANN001
    page_path, page, _ = book_page
    broken_images = page.evaluate("""async () => {
        const images = Array.from(document.images);
        await Promise.all(images.map(i => i.decode().catch(() => null)));
        return images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src);
    }""")
    hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    own_ids = set(page.evaluate("Array.from(document.querySelectorAll('[id],[name]'))"
                                ".map(e => e.id || e.getAttribute('name'))"))
    assert not broken_images, f"{page_path}: images without pixels: {broken_images}"
    origin = urlsplit(book_server.url).netloc
    here = book_server.url + page_path
    broken = []
    for href in dict.fromkeys(hrefs):
        if urlsplit(href).netloc != origin or urlsplit(href).scheme not in ("http", "https"):
            continue  # links to the wider web are text for the reader, not requests the page makes
        target, anchor = urldefrag(href)
        status, ids = fetch(target)
        if status != 200:
            broken.append(f"{href} -> HTTP {status}")
        elif anchor and anchor not in (own_ids if target == here else ids):
            broken.append(f"{href} -> no element with id {anchor!r}")
    assert not broken, f"{page_path}: broken links:\n" + "\n".join(broken)


def test_copy_buttons_copy_their_code(book_page) -> None:  # noqa: ANN001
    page_path, page, _ = book_page
    toggles = solutions_of(page).locator("button.toggle-button")
    for index in range(toggles.count()):
        toggles.nth(index).click()  # code inside solutions has copy buttons too
    blocks = page.locator("div.highlight:has(pre)")
    mismatches = []
    checked = 0
    for index in range(blocks.count()):
        block = blocks.nth(index)
        if checked >= MAX_COPY_CHECKS or not block.is_visible():
            continue
        checked += 1
        button = block.locator("button.copybtn")
        assert button.count() == 1, f"{page_path}: code block {index + 1} has no copy button"
        block.scroll_into_view_if_needed()
        block.hover()
        page.evaluate("navigator.clipboard.writeText('')")
        button.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        shown = block.locator("pre").inner_text()
        if copied.strip() != re.sub(r"\n+$", "", shown).strip():
            mismatches.append(f"block {index + 1}: copied {copied[:60]!r}, shown {shown[:60]!r}")
    assert not mismatches, f"{page_path}: copy buttons copy the wrong text: {mismatches}"


def solutions_of(page):  # noqa: ANN001, ANN201 (Playwright objects)
    return page.locator("div.solution")


def test_solutions_are_hidden_until_clicked(book_page) -> None:  # noqa: ANN001
    page_path, page, _ = book_page
    solutions = solutions_of(page)
    for index in range(solutions.count()):
        solution = solutions.nth(index)
        body = solution.locator(":scope > :not(.admonition-title)").first
        assert not body.is_visible(), f"{page_path}: solution {index + 1} is visible before any click"
        solution.locator("button.toggle-button").first.click()  # the "Click to show" chevron
        body.wait_for(state="visible", timeout=60_000)  # ends as soon as it shows: a bound, not a race
        assert body.inner_text().strip(), f"{page_path}: solution {index + 1} is empty when shown"


def test_the_book_has_exercises_with_hidden_solutions(built_book: Path) -> None:
    """The per-page check above would pass vacuously if no page had a solution: the course has three exercises."""
    pages = [built_book / p for p in PAGES]
    solutions = sum(len(re.findall(r'class="solution[ "]', p.read_text(encoding="utf-8"))) for p in pages if p.is_file())
    assert solutions >= 3, f"only {solutions} solution(s) in the book; each of the 3 exercises needs one"


def page_named(*words: str) -> str:
    for word in words:
        for path in PAGES:
            if word in Path(path).stem.lower():
                return path
    pytest.fail(f"no page of the book has any of {words} in its file name")


def test_screenshots(browser_context, book_server, built_book: Path, artifacts_dir: Path) -> None:
    """Home page, an exercise with its solution open, the tunnel lesson: PNG files that CI keeps."""
    exercise = next((p for p in PAGES if (built_book / p).is_file()
                     and 'class="solution' in (built_book / p).read_text(encoding="utf-8")), None)
    assert exercise, "no page with an exercise solution"
    shots = {"home.png": (PAGES[0], False), "exercise-solution-open.png": (exercise, True),
             "tunnel-lesson.png": (page_named("tunnel", "tensorboard"), False)}
    for name, (path, open_solution) in shots.items():
        with opened(browser_context, book_server.url + path) as (page, _):
            if open_solution:
                solution = solutions_of(page).first
                solution.locator("button.toggle-button").first.click()
                solution.locator(":scope > :not(.admonition-title)").first.wait_for(state="visible")
                solution.scroll_into_view_if_needed()
                page.evaluate("window.scrollBy(0, -250)")  # show the exercise above its solution too
                page.wait_for_timeout(300)
                page.screenshot(path=str(artifacts_dir / name))
            else:
                page.screenshot(path=str(artifacts_dir / name), full_page=name != "home.png")
        data = (artifacts_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, f"{name} is not a real screenshot"


def test_the_guard_catches_outside_requests_and_console_errors(browser_context, tmp_path: Path) -> None:
    """The checks above would pass vacuously if the route guard or console listener saw nothing: prove they see."""
    from harness.bookserver import BookServer

    (tmp_path / "index.html").write_text(
        '<html><body><h1>t</h1><script src="https://cdn.example.invalid/lib.js"></script>'
        '<script>console.error("boom")</script></body></html>')
    with BookServer(tmp_path) as server, opened(browser_context, server.url + "index.html") as (_, visit):
        pass  # loaded: what the guard and the listener saw is in `visit`
    assert visit.outside_requests == ["https://cdn.example.invalid/lib.js"]
    assert any("boom" in error for error in visit.console_errors)
