"""Keep exercises/ and solutions/ in step: outside the student's regions both files must read the same.

A student's region runs from a line `# --- your work ---` to a line `# --- end of your work ---` (indentation
allowed). Everything else in a solution is shared with its exercise, so when a solution changes outside those
regions its exercise must change the same way, or students start from code that no longer matches the book.

Command line (prints every drift, exit code 1 if there is any):
    python -m harness.exercise_sync [--solutions DIR] [--exercises DIR]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

BEGIN = "# --- your work ---"
END = "# --- end of your work ---"


class MarkerError(ValueError):
    """The region markers of a file do not pair up."""


@dataclass(frozen=True)
class SharedLine:
    """A line outside the student's regions, or a placeholder standing for one whole region."""

    lineno: int  # 1-based line number in its file
    text: str


def shared_lines(path: Path) -> list[SharedLine]:
    """The file with each student region collapsed into one placeholder line `<your work #N>`."""
    out: list[SharedLine] = []
    inside_since = 0
    regions = 0
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside_since:
                raise MarkerError(f"{path}:{lineno}: `{BEGIN}` inside the region opened on line {inside_since}")
            inside_since = lineno
            regions += 1
            out.append(SharedLine(lineno, f"{line[: len(line) - len(line.lstrip())]}<your work #{regions}>"))
        elif marker == END:
            if not inside_since:
                raise MarkerError(f"{path}:{lineno}: `{END}` without an opening `{BEGIN}`")
            inside_since = 0
        elif not inside_since:
            out.append(SharedLine(lineno, line))
    if inside_since:
        raise MarkerError(f"{path}:{inside_since}: region opened here is never closed with `{END}`")
    return out


def region_count(lines: list[SharedLine]) -> int:
    return sum(1 for line in lines if line.text.strip().startswith("<your work #"))


def drift(solution: Path, exercise: Path) -> str | None:
    """None when the two files agree outside the student's regions, else one line naming the first difference."""
    try:
        sol, exe = shared_lines(solution), shared_lines(exercise)
    except MarkerError as err:
        return str(err)
    if region_count(sol) != region_count(exe):
        return (f"{solution} has {region_count(sol)} student region(s) but {exercise} has {region_count(exe)}: "
                f"mark the same regions in both")
    for s, e in zip(sol, exe):
        if s.text != e.text:
            return (f"{solution}:{s.lineno} differs from {exercise}:{e.lineno} outside the student's regions: "
                    f"solution has {s.text.strip()!r}, exercise has {e.text.strip()!r}")
    if len(sol) != len(exe):
        longer, other = (solution, sol) if len(sol) > len(exe) else (exercise, exe)
        extra = other[min(len(sol), len(exe))]
        return f"{longer}:{extra.lineno} has extra lines outside the student's regions, from {extra.text.strip()!r}"
    return None


def twins(solutions_dir: Path, exercises_dir: Path) -> list[tuple[Path, Path]]:
    """Every file of solutions/ that has a file of the same relative path in exercises/."""
    pairs = []
    for solution in sorted(p for p in solutions_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        exercise = exercises_dir / solution.relative_to(solutions_dir)
        if exercise.is_file():
            pairs.append((solution, exercise))
    return pairs


def all_drifts(solutions_dir: Path, exercises_dir: Path) -> list[str]:
    return [d for s, e in twins(solutions_dir, exercises_dir) if (d := drift(s, e)) is not None]


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", type=Path, default=root / "solutions")
    parser.add_argument("--exercises", type=Path, default=root / "exercises")
    args = parser.parse_args(argv)
    problems = all_drifts(args.solutions, args.exercises)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"in sync: {len(twins(args.solutions, args.exercises))} exercise file(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
