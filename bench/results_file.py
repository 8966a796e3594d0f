"""Keep bench/RESULTS.md up to date: one section per part, replaced when that part runs again, others kept."""
from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = """# Benchmark results

Figures of the last run of each part of `.venv/bin/python -m bench` (see bench/README.md). Each section says when,
on which machine and at which commit it was measured. PASS/MISS compares a figure with its target; it is
information, not a test.
"""


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def update(sections: dict[str, str], order: list[str], path: Path = RESULTS) -> Path:
    """Replace or add the section of each part in `sections`, keeping parts in the order of `order`."""
    text = path.read_text() if path.exists() else HEADER
    found = {}
    for name in order:
        start, end = _markers(name)
        match = re.search(re.escape(start) + r".*?" + re.escape(end) + r"\n?", text, flags=re.S)
        if match:
            found[name] = match.group(0)
            text = text.replace(match.group(0), "")
    found.update({name: "\n".join([*_markers(name)[:1], body.rstrip(), _markers(name)[1]]) + "\n"
                  for name, body in sections.items()})
    text = text.rstrip() + "\n"
    for name in order:
        if name in found:
            text += "\n" + found[name]
    path.write_text(text)
    return path
