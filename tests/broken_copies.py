"""Deliberately broken copies of the course's files, for the tests that prove a check bites on a mistake."""
from __future__ import annotations

from pathlib import Path


def broken_copy_of(source: Path, target: Path, *edits: tuple[str, str]) -> Path:
    """`source` written to `target` with each `old` replaced by `new`; a source that no longer holds an `old` fails
    the test, which must then be updated (else the copy would silently hold no mistake)."""
    text = source.read_text()
    for old, new in edits:
        assert old in text, f"{source.parent.name}/{source.name} no longer contains {old!r}: update this test's " \
            "broken copy"
        text = text.replace(old, new)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def broken_solution(course_root: Path, name: str, folder: Path, *edits: tuple[str, str]) -> Path:
    """The course's solution `name` with `edits` made (broken_copy_of), written to `folder` under its own name."""
    return broken_copy_of(course_root / "solutions" / name, folder / name, *edits)
