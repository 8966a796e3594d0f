"""The book's table of contents and its builder: found in one place for the tests, the browser checks and the bench."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def toc_files(root: Path = REPO) -> list[str]:
    """Every page of `root/_toc.yml` (root, parts, chapters, sections) as a path without suffix, in book order."""
    toc = root / "_toc.yml"
    if not toc.is_file():
        return []
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for entry in node:
                walk(entry)

    walk(yaml.safe_load(toc.read_text(encoding="utf-8")))
    return list(dict.fromkeys(str(Path(f).with_suffix("")) if Path(f).suffix in (".md", ".ipynb", ".rst") else f
                              for f in found))


def toc_pages(root: Path = REPO) -> list[str]:
    """Every page as an HTML path relative to the built site's root, in book order."""
    return [f"{name}.html" for name in toc_files(root)]


def jupyter_book() -> str | None:
    """The jupyter-book beside this Python (the project's venv), else the one on PATH, else None."""
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.exists() else shutil.which("jupyter-book")
