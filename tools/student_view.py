"""The student's view of the self-check, as CI proves it: `pytest --target exercises` on a copy of the course.

    python -m tools.student_view            # both runs; exit 1 when either is not as it must be

1. The exercises untouched: the run fails, and every exercise of the course says "not done: <what is missing>".
2. The solutions copied into exercises/: the run passes, every exercise says "done", and no check was skipped.
Run it as a normal user (CI runs it as the local cluster's course user): that is who students are.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.course_copy import copy_course
from harness.exercises import all_exercises

ROOT = Path(__file__).resolve().parent.parent


def student_copy(dest: Path, solved: bool) -> Path:
    """A copy of the course; with `solved`, the solutions copied over the student's files."""
    copy_course(ROOT, dest)
    if solved:
        for exercise in all_exercises():
            for name in exercise.programs:
                shutil.copy2(dest / "solutions" / name, dest / "exercises" / name)
    return dest


def self_check(copy: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    """`pytest --target exercises` in the copy, with this Python (the course's .venv)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(COLUMNS="200", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--target", "exercises", *args],
                          cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)


def verdict_lines(output: str) -> dict[str, str]:
    """The "Your exercises" section: exercise heading -> its verdict."""
    section = output.split("Your exercises", 1)[-1]
    return dict(re.findall(r"^(Exercise \d+: [^:]+): (.+)$", section, re.MULTILINE))


def problems(run: subprocess.CompletedProcess, solved: bool) -> list[str]:
    """What is wrong with one run (nothing, when it is as the student must see it)."""
    found = verdict_lines(run.stdout)
    wanted = [e.heading for e in all_exercises()]
    out = [f"{heading}: no verdict line" for heading in wanted if heading not in found]
    for heading, line in found.items():
        if solved and line != "done":
            out.append(f"{heading}: {line} (the solutions must be `done`)")
        if not solved and not line.startswith("not done: "):
            out.append(f"{heading}: {line} (an untouched exercise must be `not done`)")
    if (run.returncode == 0) != solved:
        out.append(f"pytest exited {run.returncode}")
    skipped = re.search(r"(\d+) skipped", run.stdout)
    if solved and skipped:
        out.append(f"{skipped[1]} check(s) skipped")
    return out


def main() -> int:
    failures = 0
    for solved in (False, True):
        title = "solutions copied in" if solved else "exercises untouched"
        with tempfile.TemporaryDirectory(prefix="student-view-") as scratch:
            run = self_check(student_copy(Path(scratch) / "course", solved))
        print(f"--- {title}: pytest --target exercises exited {run.returncode}")
        print("\n".join(f"{h}: {line}" for h, line in verdict_lines(run.stdout).items()))
        found = problems(run, solved)
        for problem in found:
            print(f"WRONG: {problem}")
        if found:
            print(run.stdout[-4000:] + run.stderr[-2000:])
        failures += bool(found)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
