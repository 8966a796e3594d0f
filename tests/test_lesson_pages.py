"""Every executable lesson page of the book runs, each as its own test, and a broken cell is reported precisely."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.notebooks import PageFailure, find_text_notebooks, half_notebooks, run_page
from harness.plugin import ROOT

BOOK = ROOT / "book"
PAGES = find_text_notebooks(BOOK)


@pytest.mark.skipif(not PAGES, reason="no MyST text notebooks in book/ yet")
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_lesson_page_runs(page: Path) -> None:
    """The page runs top to bottom on the CPU from book/, as during the book build."""
    try:
        run = run_page(page, cwd=BOOK)
    except PageFailure as failure:
        pytest.fail(str(failure), pytrace=False)
    code_cells = [c for c in run.notebook.cells if c.cell_type == "code" and c.source.strip()]
    assert code_cells, f"{page.name} has a kernelspec header but no code cells: make it a plain page"
    assert all(c.get("execution_count") for c in code_cells), f"{page.name}: a code cell was not executed"


def test_no_page_is_half_a_notebook() -> None:
    """A page with a kernelspec but without the jupytext myst header would be shown, never run, by the build."""
    half = [str(p.relative_to(ROOT)) for p in half_notebooks(BOOK)]
    assert not half, (f"{half}: add `jupytext: text_representation: {{extension: .md, format_name: myst}}` "
                      "to the front matter, or drop the kernelspec")


# ---- the harness itself --------------------------------------------------------------------------------------------

_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def _page(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.md"
    path.write_text(_HEADER + body, encoding="utf-8")
    return path


def test_harness_finds_only_text_notebooks(tmp_path: Path) -> None:
    notebook = _page(tmp_path, "runs", "# A page\n\n```{code-cell} ipython3\n1\n```\n")
    (tmp_path / "plain.md").write_text("# Plain page\n\nNo code runs here.\n", encoding="utf-8")
    (tmp_path / "other.md").write_text("---\ntitle: not a notebook\n---\n# Other\n", encoding="utf-8")
    half = tmp_path / "half.md"
    half.write_text("---\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n# Half\n", encoding="utf-8")
    assert find_text_notebooks(tmp_path) == [notebook]
    assert half_notebooks(tmp_path) == [half]


def test_harness_runs_a_page_in_the_given_folder(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("six times seven", encoding="utf-8")
    page = _page(tmp_path, "good", """# Good

```{code-cell} ipython3
import os
words = open("data.txt").read().split()
print(len(words) * 14, os.environ["CUDA_VISIBLE_DEVICES"] == "")
```
""")
    run = run_page(page, cwd=tmp_path, cell_timeout_s=60)
    assert "42 True" in run.text_outputs()


def test_harness_reports_page_cell_source_and_traceback(tmp_path: Path) -> None:
    page = _page(tmp_path, "broken", """# Broken page

Some text first.

```{code-cell} ipython3
numbers = [1, 2, 3]
```

More text.

```{code-cell} ipython3
print("a first line that repeats")
```

```{code-cell} ipython3
print("a first line that repeats")
total = sum(numbers)
ratio = total / (len(numbers) - 3)
```

```{code-cell} ipython3
print("never reached")
```
""")
    with pytest.raises(PageFailure) as caught:
        run_page(page, cwd=tmp_path, cell_timeout_s=60)
    failure = caught.value
    report = str(failure)
    assert failure.cell_index == 4  # markdown, code, markdown, code, code: the third code cell
    assert failure.code_cell_number == 3
    assert failure.ename == "ZeroDivisionError"
    assert f"{page}:{failure.line}" in report and failure.line == 26
    assert "cell index 4 (code cell 3)" in report
    assert "ratio = total / (len(numbers) - 3)" in report
    assert "ZeroDivisionError: division by zero" in report
    assert "\x1b[" not in report, "the traceback still carries terminal colour codes"
    assert "never reached" not in report


def test_harness_reports_a_cell_that_times_out(tmp_path: Path) -> None:
    page = _page(tmp_path, "slow", "# Slow\n\n```{code-cell} ipython3\nimport time\ntime.sleep(30)\n```\n")
    with pytest.raises(PageFailure) as caught:
        run_page(page, cwd=tmp_path, cell_timeout_s=2)
    assert caught.value.ename == "CellTimeoutError"
    assert caught.value.cell_index == 1
    assert "time.sleep(30)" in str(caught.value)
