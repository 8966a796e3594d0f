"""Part book-build: a cold `jupyter-book build` (empty execution cache) vs a rebuild with nothing changed.

The book is copied to a temporary folder first, so the working tree's `_build/` is neither used nor touched.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.report import Check, Part, Skipped

ROOT = Path(__file__).resolve().parent.parent
TARGET_SPEEDUP = 5.0
LOGS = ROOT / "bench" / "out" / "book-build"  # git-ignored; the build logs, to see what a rebuild redid
LEAVE_OUT = (".git", ".venv", ".venv-*", "_build", "slurm-out", "bench", ".pytest_cache", "__pycache__", "node_modules",
             "artifacts")


def jupyter_book() -> str:
    """The venv's jupyter-book next to this Python, else the one on PATH."""
    from harness.book import jupyter_book as lookup

    found = lookup()
    if not found:
        raise Skipped("jupyter-book not found (install requirements.txt into .venv)")
    return found


def execution_mode(config: Path) -> str:
    """`execute_notebooks` from _config.yml (Jupyter Book's default is auto)."""
    match = re.search(r"^\s*execute_notebooks:\s*['\"]?(\w+)", config.read_text(), flags=re.M)
    return match.group(1) if match else "auto (default)"


def timed_build(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise Skipped(f"jupyter-book build failed (exit {done.returncode}): {tail}")
    return seconds


def run() -> Part:
    config = ROOT / "_config.yml"
    if not config.exists() or not (ROOT / "_toc.yml").exists():
        raise Skipped("no _config.yml/_toc.yml at the top of the repository yet")
    book = jupyter_book()
    part = Part("book-build", "jupyter-book build into a temporary copy of the repository",
                headers=["build", "seconds", "speed-up"])
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        copy = Path(tmp) / "course"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*LEAVE_OUT), symlinks=True)
        command = [book, "build", str(copy)]
        LOGS.mkdir(parents=True, exist_ok=True)
        cold = timed_build(command, LOGS / "cold.log")
        pages = len(list((copy / "_build" / "html").rglob("*.html")))
        warm = timed_build(command, LOGS / "rebuild.log")
    part.rows = [["cold (execution cache empty)", cold, 1.0], ["rebuild, nothing changed", warm, cold / warm]]
    part.checks.append(Check("rebuild speed-up", cold / warm, TARGET_SPEEDUP, unit="x"))
    for label in ("cold", "rebuild"):
        log = re.sub(r"\x1b\[[0-9;]*m", "", (LOGS / f"{label}.log").read_text())
        said = [line.strip() for line in log.splitlines()
                if "updating environment" in line or "executing outdated notebooks" in line.lower()]
        if said:
            part.notes.append(f"Sphinx, {label}: " + "; ".join(said))
    part.notes.append(f"{pages} HTML pages; execute_notebooks: {execution_mode(config)}; command "
                      "`jupyter-book build <copy>` (no -W, so a warning does not hide the timing).")
    return part
