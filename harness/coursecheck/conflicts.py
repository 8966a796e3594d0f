"""Rule 2: merge-conflict markers left in any course text file."""
from __future__ import annotations

import re
from pathlib import Path

from harness.coursecheck.files import Problem, course_files, relative

CONFLICT = re.compile(r"^(<{7}|\|{7}|>{7})(?:\s|$)|^(={7})\s*$")


def conflict_markers(root: Path, files: list[Path] | None = None) -> list[Problem]:
    problems = []
    for path in course_files(root) if files is None else files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            match = CONFLICT.match(line)
            if match:
                marker = match[1] or match[2]
                problems.append(Problem(relative(path, root), number,
                                        f"merge-conflict marker `{marker}` left in the file: resolve the conflict "
                                        f"(keep the right lines) and delete the marker lines"))
    return problems
