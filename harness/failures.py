"""One line on why a course program failed, in the words a student can act on.

A student's check should never end in a wall of traceback or a library's own words. What helps is: the TODO their
file still raises, or else the line of their own file that raised and the exception's one line
(`train.py:12: RuntimeError: mat1 and mat2 shapes cannot be multiplied`), or else the last thing the program said.
"""
from __future__ import annotations

import re

TODO_RAISED = re.compile(r"NotImplementedError: (TODO\b.*)")
FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)', re.MULTILINE)
EXCEPTION_LINE = re.compile(r"^(?:[\w.]+(?:Error|Exception|Interrupt|Exit)|[\w.]+Warning)\b.*$", re.MULTILINE)
LIBRARY = ("site-packages", "dist-packages", "/lib/python", "<frozen", "<string>")
# A check that builds on an earlier exercise says so first: written by `first_finish`, found by the self-check
NEEDS_EARLIER = re.compile(r"^(?:Failed: )?(first finish exercise \d+\b.*)$", re.MULTILINE)


def first_finish(earlier: str, why: str) -> str:
    """The one line of a check that failed because an earlier exercise is not done yet; `earlier` names it
    ("exercise 4 (datasets.py)"), `why` is that exercise's own line (its TODO)."""
    return f"first finish {earlier}: {why}"


def raised_in_course_file(stderr: str) -> tuple[str, int] | None:
    """The innermost frame of the last traceback that is in a course file (not Python's or a library's)."""
    frames = [(path, int(line)) for path, line in FRAME.findall(stderr) if not any(x in path for x in LIBRARY)]
    if not frames:
        return None
    path, line = frames[-1]
    return path.rsplit("/", 1)[-1], line


def first_found(text: str, patterns: tuple[re.Pattern, ...] = (TODO_RAISED,)) -> str:
    """What the first of `patterns` that matches found (its first group), "" when none does: the TODO raised."""
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return match.group(1).strip()
    return ""


def raised(text: str) -> tuple[str, str] | None:
    """(`FILE:LINE` of the course file that raised, the exception's line), or None where the text lacks either."""
    where, exceptions = raised_in_course_file(text), EXCEPTION_LINE.findall(text)
    return (f"{where[0]}:{where[1]}", exceptions[-1].strip()) if where and exceptions else None


def why_failed(program: str, returncode: int, stderr: str, stdout: str = "") -> str:
    """The TODO raised, else `FILE:LINE: the exception's line` of the course file that raised, else the last line
    of the output, each prefixed with what failed."""
    todo = first_found(stderr)
    if todo:
        return todo
    exception = raised(stderr)
    if exception:
        return f"{program} failed at {exception[0]}: {exception[1]}"
    last = (stderr.strip() or stdout.strip() or "no output").splitlines()[-1].strip()
    return f"{program} failed (exit code {returncode}): {last}"
