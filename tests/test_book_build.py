"""The book builds with no network, warnings as errors, and the HTML is complete and self-contained.

Also: the diagrams regenerate from their graphviz sources, and the committed SVGs match those sources.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.book import jupyter_book, toc_files
from harness.course_copy import copy_course
from harness.notebooks import strip_ansi
from harness.plugin import ROOT
from harness.offline import run_offline
from harness.requires import require_command

BUILD_TIMEOUT_S = 600

# ---- diagrams ------------------------------------------------------------------------------------------------------

SVG_NS = "{http://www.w3.org/2000/svg}"
EXPECTED_LABELS = {
    "ddp-launch": ["sbatch ddp.sbatch", "srun: one task per node", "hosts the rendezvous on jrc0001i",
                   "joins the rendezvous", "jrc0001i:port", "rank 0", "rank 7", "(DistributedSampler)"],
    "ddp-algorithm": ["split into 4 shares (DistributedSampler)", "forward, loss, backward",
                      "all-reduce: the gradients averaged over all processes", "the same update"],
    "batch-queue": ["Login node", "sbatch job.sbatch", "Slurm queue", "pending job (PD)", "job running (R)",
                    "results files", "output.JOBID, error.JOBID", "You"],
    "login-vs-compute": ["Internet", "login node", "with GPUs for visualisation", "Compute nodes with GPUs: NO internet",
                         "no internet", "Shared file system", "caches filled", "jobs read the caches"],
    "ssh-tunnel": ["Browser", "http://localhost:9999", "localhost:9999", "Firewall", "only port 22 (ssh) open",
                   "TensorBoard", "127.0.0.1:9999", "ssh -L, encrypted"],
    "small-files": ["reading a folder of JPEGs", "reading pets.h5 or pets.arrow", "metadata servers",
                    "storage servers", "one open per picture:", "one open per file", "large sequential reads"],
    "modules-tree": ["Stages/2024", "compiler: GCC/12.3.0", "MPI: OpenMPI/4.1.5", "PyTorch/2.1.2",
                     "torchvision/0.16.2"],
    "venv-on-modules": ["JSC's modules", "torch (PyTorch module)", "torchvision (its own module)", "fastai",
                        "import fastai", "import torch", "--system-site-packages"],
}


def svg_texts(path: Path) -> list[str]:
    """The visible text of an SVG (graphviz puts each label line in its own <text>); fails if it is not SVG."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg", f"{path.name}: root element is {root.tag}, not <svg>"
    return [(t.text or "").strip() for t in root.iter(f"{SVG_NS}text")]


def test_diagrams_regenerate_from_sources(tmp_path: Path) -> None:
    require_command("dot", "install graphviz to regenerate the diagrams")
    result = subprocess.run(["bash", str(ROOT / "book/diagrams/make.sh"), str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"make.sh failed:\n{result.stderr}"
    made = sorted(p.stem for p in tmp_path.glob("*.svg"))
    assert made == sorted(EXPECTED_LABELS), f"make.sh made {made}"
    for name, labels in EXPECTED_LABELS.items():
        fresh = svg_texts(tmp_path / f"{name}.svg")
        joined = "\n".join(fresh)
        missing = [label for label in labels if label not in joined]
        assert not missing, f"{name}.svg lacks the labels {missing}"
        committed = svg_texts(ROOT / "book/images" / f"{name}.svg")
        assert sorted(committed) == sorted(fresh), (
            f"book/images/{name}.svg is stale: run book/diagrams/make.sh and commit the SVG")
    assert not list(tmp_path.glob(".*")), "make.sh left temporary files behind"


# ---- the book build ------------------------------------------------------------------------------------------------

LITERALINCLUDE = re.compile(r"^[ \t]*(?:`{3,}|:{3,})\{literalinclude\}[ \t]+(\S+)[ \t]*\n((?:[ \t]*:[\w-]+:.*\n)*)",
                            re.MULTILINE)
# Options that show only part of a file, or rewrite it: those includes are not compared verbatim.
PARTIAL_OPTIONS = {"lines", "start-after", "end-before", "start-at", "end-at", "pyobject", "dedent", "diff",
                   "prepend", "append", "tab-width"}


class _PageScan(HTMLParser):
    """Collects external resource URLs, <pre> text (code as shown) and class names of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self.images: list[str] = []
        self.classes: set[str] = set()
        self.pre_texts: list[str] = []
        self._pre_depth = 0
        self._skip_depth = 0  # inside line-number spans, which are not part of the code
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.classes.update(a.get("class", "").split())
        url = ""
        if tag in ("script", "img", "iframe", "source", "video", "audio", "embed"):
            url = a.get("src", "")
        elif tag == "link" and set(a.get("rel", "").lower().split()) & {"stylesheet", "preload", "icon",
                                                                         "modulepreload", "prefetch"}:
            url = a.get("href", "")
        if tag == "img":
            self.images.append(a.get("src", ""))
        if re.match(r"^(https?:)?//", url):
            self.external.append(f"<{tag}> {url}")
        if tag == "pre":
            self._pre_depth += 1
            if self._pre_depth == 1:
                self._buffer = []
        elif self._pre_depth and (self._skip_depth or "linenos" in a.get("class", "").split()):
            self._skip_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth and tag != "pre":
            self._skip_depth -= 1
        elif tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
            if self._pre_depth == 0:
                self.pre_texts.append("".join(self._buffer))

    def handle_data(self, data: str) -> None:
        if self._pre_depth and not self._skip_depth:
            self._buffer.append(data)


def scan(page: Path) -> _PageScan:
    parser = _PageScan()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def literal_includes(source: Path, source_root: Path) -> list[tuple[Path, bool]]:
    """(included file, whole file shown?) for every literalinclude of a MyST page."""
    found = []
    for match in LITERALINCLUDE.finditer(source.read_text(encoding="utf-8")):
        target, options = match.group(1), match.group(2)
        names = set(re.findall(r":([\w-]+):", options))
        path = source_root / target.lstrip("/") if target.startswith("/") else source.parent / target
        found.append((path.resolve(), not names & PARTIAL_OPTIONS))
    return found


def jupyter_book_executable() -> str:
    found = jupyter_book()
    return found if found else require_command("jupyter-book", "pip install -r requirements.txt")


def warning_lines(log: str) -> list[str]:
    """Sphinx's warnings and errors, without the kernel's harmless start-up chatter."""
    return [ln for ln in log.splitlines()
            if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", ln) and "[IPKernelApp]" not in ln]


def build_offline_and_check(root: Path, tmp_path: Path) -> float:
    """Copy the course at `root`, build its book in `unshare -n` with -W, check the HTML; return the build seconds."""
    assert (root / "_toc.yml").is_file(), f"{root}/_toc.yml is missing: the book has no table of contents yet"
    copy = tmp_path / "course"
    copy_course(root, copy)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    started = time.monotonic()
    result = run_offline([jupyter_book_executable(), "build", str(copy), "-W", "--keep-going"],
                         cwd=copy, env=env, timeout=BUILD_TIMEOUT_S)
    seconds = time.monotonic() - started
    log = strip_ansi(result.stdout + result.stderr)
    (tmp_path / "build.log").write_text(log, encoding="utf-8")
    if result.returncode != 0:
        warnings = warning_lines(log)
        problems = "\n".join(warnings)
        if not warnings or any("Executing notebook failed" in w for w in warnings):
            problems += "\n---- end of the build log ----\n" + log[-3000:]
        pytest.fail(f"offline book build (jupyter-book build -W --keep-going) failed after {seconds:.0f} s, "
                    f"exit {result.returncode}:\n{problems}", pytrace=False)

    out = copy / "_build" / "html"
    pages = toc_files(copy)
    missing = [p for p in pages if not (out / f"{p}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"

    external: list[str] = []
    for page in out.rglob("*.html"):
        external += [f"{page.relative_to(out)}: {ref}" for ref in scan(page).external]
    for css in out.rglob("*.css"):
        external += [f"{css.relative_to(out)}: {m}" for m in
                     re.findall(r"""(?:url\(|@import\s+)["']?((?:https?:)?//[^"')\s]+)""",
                                css.read_text(encoding="utf-8", errors="replace"))]
    assert not external, "the HTML loads resources from the network:\n" + "\n".join(sorted(set(external)))

    shown_images = {Path(src).name for name in pages for src in scan(out / f"{name}.html").images}
    unshown = sorted(f"{d}.svg" for d in EXPECTED_LABELS if f"{d}.svg" not in shown_images)
    assert not unshown, f"diagrams no page shows: {unshown}"
    assert all(list(out.rglob(f"{d}.svg")) for d in EXPECTED_LABELS), "a diagram was not copied into the HTML"

    solution_pages, include_failures = [], []
    for name in pages:
        sources = [copy / f"{name}{ext}" for ext in (".md", ".ipynb", ".rst") if (copy / f"{name}{ext}").exists()]
        assert sources, f"_toc.yml lists {name}, but there is no {name}.md"
        text = sources[0].read_text(encoding="utf-8")
        page_scan = scan(out / f"{name}.html")
        if re.search(r"\{solution(-start)?\}", text):
            solution_pages.append(name)
            assert "solution" in page_scan.classes, f"{name}: has a solution directive but no solution in its HTML"
        shown = "\n".join(page_scan.pre_texts)
        for included, whole in literal_includes(sources[0], copy):
            assert included.is_file(), f"{name}: literalinclude of a missing file {included}"
            if whole and included.read_text(encoding="utf-8").strip() not in shown:
                include_failures.append(f"{name}: {included.relative_to(copy)} is not shown verbatim")
    assert not include_failures, "\n".join(include_failures)
    assert solution_pages, "no page of the book has a sphinx-exercise solution"

    matrix_page = next((n for n in pages if Path(n).name == "matrix"), None)
    if matrix_page is not None:
        sbatch = (copy / "slurm" / "jureca-matrix.sbatch").read_text(encoding="utf-8").strip()
        assert sbatch in "\n".join(scan(out / f"{matrix_page}.html").pre_texts), (
            f"{matrix_page}: slurm/jureca-matrix.sbatch is not shown verbatim")
    return seconds


@pytest.mark.slow
def test_book_builds_offline_and_is_complete(tmp_path: Path) -> None:
    seconds = build_offline_and_check(ROOT, tmp_path)
    print(f"offline book build: {seconds:.1f} s")
