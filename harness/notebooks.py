"""Run the book's executable lesson pages (MyST text notebooks) the way the book build does, one page at a time.

Why not just build the book? A build executes every page in one process and a broken cell drowns in Sphinx output.
Here each page is one call (one pytest item, so pages run in parallel under xdist), and a failure comes back as a short
report: the page, the cell index, the cell's source and the Python traceback from the kernel.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
from myst_nb.core.read import is_myst_markdown_notebook
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

# Per-cell limit, the same as `execute.timeout` in _config.yml: no lesson cell trains a network.
DEFAULT_CELL_TIMEOUT_S = 300

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.DOTALL)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """Kernel tracebacks are coloured for terminals; reports are read in logs."""
    return _ANSI.sub("", text)


def _front_matter_keys(path: Path) -> str:
    try:
        head = path.read_text(encoding="utf-8")[:20000]
    except (OSError, UnicodeDecodeError):
        return ""
    match = _FRONT_MATTER.match(head)
    return match.group(1) if match else ""


def is_text_notebook(path: Path) -> bool:
    """Exactly the pages the book build executes: myst-nb's own test (a `jupytext` header with format_name myst)."""
    try:
        return is_myst_markdown_notebook(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False


def looks_like_notebook(path: Path) -> bool:
    """A page whose front matter has a `jupytext` or `kernelspec` header, whether or not myst-nb accepts it."""
    return bool(re.search(r"^(jupytext|kernelspec)\s*:", _front_matter_keys(path), re.MULTILINE))


def _pages(book_dir: Path) -> list[Path]:
    skip = {"_build", ".ipynb_checkpoints", "diagrams"}
    return sorted(p for p in book_dir.rglob("*.md") if not skip.intersection(p.relative_to(book_dir).parts))


def half_notebooks(book_dir: Path) -> list[Path]:
    """Pages meant to run (a kernelspec) that the build would show without running (no jupytext myst header)."""
    return [p for p in _pages(book_dir) if looks_like_notebook(p) and not is_text_notebook(p)]


def find_text_notebooks(book_dir: Path) -> list[Path]:
    """Every executable page under `book_dir`, sorted, so test ids are stable."""
    return [p for p in _pages(book_dir) if is_text_notebook(p)]


@dataclass
class PageFailure(Exception):
    """A lesson page that did not run: enough to find and fix the cell without reading kernel logs."""

    page: Path
    cell_index: int | None  # index among all cells of the notebook jupytext reads (markdown cells count too)
    code_cell_number: int | None  # 1-based among the code cells: "the 3rd code cell on the page"
    line: int | None  # 1-based line in the .md file where the cell's source starts, when it can be found
    source: str
    ename: str
    evalue: str
    traceback: str = field(repr=False)

    def __str__(self) -> str:
        where = f"{self.page}"
        if self.line is not None:
            where += f":{self.line}"
        lines = [f"lesson page failed: {where}"]
        if self.cell_index is not None:
            lines.append(f"cell index {self.cell_index} (code cell {self.code_cell_number})")
        lines.append(f"error: {self.ename}: {self.evalue}".rstrip(": "))
        lines.append("---- cell source ----")
        lines.append(self.source.rstrip() or "(empty)")
        lines.append("---- traceback ----")
        lines.append(self.traceback.rstrip() or "(none)")
        return "\n".join(lines)


@dataclass
class PageRun:
    """A page that ran: its executed notebook, so callers can check outputs too."""

    page: Path
    notebook: nbformat.NotebookNode

    def text_outputs(self) -> str:
        """All stream and plain-text results of the page, concatenated: what a reader sees printed."""
        parts: list[str] = []
        for cell in self.notebook.cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    parts.append(out.get("text", ""))
                elif "data" in out and "text/plain" in out["data"]:
                    parts.append(out["data"]["text/plain"])
        return "\n".join(parts)


def _line_of(page_text: str, source: str) -> int | None:
    """Best effort: the line in the .md where the cell's source starts (its whole block must match there)."""
    cell = [ln.rstrip() for ln in source.strip("\n").splitlines()]
    if not cell:
        return None
    page = [ln.rstrip() for ln in page_text.splitlines()]
    for start in range(len(page) - len(cell) + 1):
        if page[start:start + len(cell)] == cell:
            return start + 1
    return None


def cpu_kernel_env() -> dict[str, str]:
    """The kernel's environment: ours, with no GPU visible, so pages take their CPU path as in the book build."""
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_page(page: Path, cwd: Path | None = None, cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S,
             kernel_name: str | None = None, env: dict[str, str] | None = None) -> PageRun:
    """Execute one text notebook top to bottom; raise PageFailure naming the first cell that failed.

    `cwd` defaults to the page's folder (book/), as the book build runs it; `kernel_name` defaults to the page's
    kernelspec (python3: the interpreter running the tests, when ipykernel is installed in it).
    """
    page = Path(page)
    text = page.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="md:myst")
    kernel = kernel_name or notebook.metadata.get("kernelspec", {}).get("name") or "python3"
    code_positions = {i: n for n, i in enumerate(
        (i for i, c in enumerate(notebook.cells) if c.cell_type == "code"), start=1)}
    current: dict[str, int | None] = {"index": None}

    def remember(cell: nbformat.NotebookNode, cell_index: int, **_: object) -> None:
        current["index"] = cell_index

    client = NotebookClient(
        notebook,
        timeout=cell_timeout_s,
        kernel_name=kernel,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(cwd or page.parent)}},
        on_cell_start=remember,
    )

    def failure(ename: str, evalue: str, traceback: str) -> PageFailure:
        index = current["index"]
        source = notebook.cells[index].source if index is not None else ""
        return PageFailure(page=page, cell_index=index, code_cell_number=code_positions.get(index),
                           line=_line_of(text, source) if source else None, source=source,
                           ename=ename, evalue=evalue, traceback=strip_ansi(traceback))

    # The kernel's own stderr (start-up chatter, warnings) goes to a file, read only when the kernel dies.
    with tempfile.TemporaryFile(mode="w+b") as kernel_stderr:
        try:
            client.execute(env=env or cpu_kernel_env(), stderr=kernel_stderr)
        except CellExecutionError as err:
            raise failure(err.ename, err.evalue, _cell_traceback(notebook, current["index"]) or err.traceback) from None
        except CellTimeoutError:
            raise failure("CellTimeoutError", f"the cell ran longer than {cell_timeout_s} s", "") from None
        except DeadKernelError as err:
            kernel_stderr.seek(0)
            tail = kernel_stderr.read().decode("utf-8", "replace")[-4000:]
            raise failure("DeadKernelError", "the kernel died (out of memory, or a crash in native code)",
                          f"{err}\nkernel stderr (last lines):\n{tail}") from None
    return PageRun(page=page, notebook=notebook)


def _cell_traceback(notebook: nbformat.NotebookNode, index: int | None) -> str:
    """The traceback as the kernel sent it for the failed cell (without nbclient's copy of the source)."""
    if index is None:
        return ""
    for out in notebook.cells[index].get("outputs", []):
        if out.get("output_type") == "error":
            return "\n".join(out.get("traceback", []))
    return ""
