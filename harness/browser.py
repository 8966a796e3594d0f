"""Fixtures for the browser tests: the book built once per session, served on 127.0.0.1, and headless Chromium.

* `built_book`: the HTML folder. Built once per test session into a temporary folder (under xdist, one worker
  builds while the others wait on a file lock). The repository's own `_build/.jupyter_cache` is copied in first,
  so pages whose code did not change are not executed again. `COURSE_BOOK_HTML=DIR` uses an HTML folder built
  elsewhere instead (quick local runs); `COURSE_BOOK_ROOT=DIR` tests another book's sources (the harness's own
  tests use a tiny book).
* `book_server`: that folder served on 127.0.0.1 (harness/bookserver.py).
* `browser_context`: Debian's Chromium (/usr/bin/chromium, never a downloaded one) driven by Playwright, with an
  empty profile and clipboard access, no network features.
* `visit(context, url)`: load one page and record what a student's browser would trip over.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from harness import book
from harness.bookserver import BookServer
from harness.once import once_per_run
from harness.requires import require

REPO = Path(__file__).resolve().parent.parent
ROOT = Path(os.environ.get("COURSE_BOOK_ROOT", REPO)).resolve()  # the book's sources (another book: tests only)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
BUILD_TIMEOUT_S = 1800


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page of the book under test as an HTML path, in table-of-contents order."""
    return book.toc_pages(root)


def build_book(out_dir: Path, root: Path = ROOT) -> Path:
    """Build the book into out_dir/_build/html (cells executed, reusing the repository's execution cache)."""
    cache = root / "_build" / ".jupyter_cache"
    if cache.is_dir() and not (out_dir / "_build" / ".jupyter_cache").exists():
        shutil.copytree(cache, out_dir / "_build" / ".jupyter_cache")
    builder = book.jupyter_book()
    if builder is None:
        raise RuntimeError("jupyter-book not found: pip install -r requirements.txt")
    run = subprocess.run([builder, "build", str(root), "--path-output", str(out_dir), "--keep-going"],
                         capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=root)
    html = out_dir / "_build" / "html"
    if run.returncode != 0 or not (html / "index.html").is_file():
        tail = "\n".join((run.stdout + run.stderr).splitlines()[-40:])
        raise RuntimeError(f"jupyter-book build failed (exit {run.returncode}):\n{tail}")
    return html


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book's HTML, built once for the whole session (all xdist workers share one build)."""
    if os.environ.get("COURSE_BOOK_HTML"):
        return Path(os.environ["COURSE_BOOK_HTML"]).resolve()
    with once_per_run(tmp_path_factory, "built-book") as out_dir:
        failed = out_dir.with_name("built-book.failed")
        if failed.exists():
            raise RuntimeError(failed.read_text())
        html = out_dir / "_build" / "html"
        if not (html / "index.html").is_file():
            try:
                build_book(out_dir)
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                failed.write_text(str(err))
                raise
    return html


@pytest.fixture(scope="session")
def book_server(built_book: Path) -> Iterator[BookServer]:
    with BookServer(built_book) as server:
        yield server


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 (a Playwright BrowserContext)
    """Headless Debian Chromium with an empty profile; the clipboard may be read, as a copy-button test needs."""
    require(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} not found: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the Python package playwright is missing: pip install -r requirements.txt")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, permissions=["clipboard-read", "clipboard-write"],
            service_workers="block")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go; CI keeps this folder (ARTIFACTS_DIR, default ./artifacts/screenshots)."""
    path = Path(os.environ.get("ARTIFACTS_DIR", REPO / "artifacts" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class PageVisit:
    """What happened while one page loaded."""

    url: str
    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS


def open_page(context, url: str):  # noqa: ANN001, ANN201 (Playwright objects)
    """Load url in a new tab; every request that would leave 127.0.0.1 is recorded and blocked."""
    visit = PageVisit(url)
    page = context.new_page()

    def guard(route, request) -> None:  # noqa: ANN001
        if is_local(request.url):
            route.continue_()
        else:
            visit.outside_requests.append(request.url)
            route.abort()

    page.route("**/*", guard)
    page.on("console", lambda msg: visit.console_errors.append(f"{msg.text} ({msg.location.get('url', '')})")
            if msg.type == "error" else None)
    page.on("pageerror", lambda err: visit.console_errors.append(f"uncaught: {err}"))
    page.on("requestfailed", lambda req: visit.failed_requests.append(f"{req.url} ({req.failure})")
            if is_local(req.url) else None)
    response = page.goto(url, wait_until="load")
    visit.status = response.status if response else None
    page.wait_for_load_state("networkidle")
    return page, visit
