"""Part student-time: how long a student waits for the verdict of one exercise, `pytest --target exercises -k KEY`.

Measured as a student meets it: as a normal user (the local cluster's course user when the bench runs as root), in
a copy of the course with the solutions copied into exercises/ (so every check really runs to the end), serially,
one exercise after the other, each in its own pytest process (start-up included). Each exercise REPEATS times: the
median counts, and the one-minute load before its first run is shown beside it.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Check, Part, Skipped

REPEATS = 3


def run() -> Part:
    from harness.exercises import all_exercises
    from harness.users import as_course_user, course_user
    from tools.student_view import student_copy, verdict_lines

    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise Skipped("running as root without runuser: cannot measure as a normal user")
    part = Part("student-time", "seconds to a verdict: `pytest --target exercises -k KEY`, solutions copied in, "
                f"as a normal user, median of {REPEATS}", headers=["exercise", "key", "median s", "runs s",
                                                                   "load before", "verdict", "target s"])
    with tempfile.TemporaryDirectory(prefix="bench-student-") as tmp:
        copy = student_copy(Path(tmp) / "course", solved=True)
        if os.geteuid() == 0:
            os.chmod(tmp, 0o755)
            shutil.chown(tmp, course_user())
            subprocess.run(["chown", "-R", course_user(), str(copy)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(PYTHONDONTWRITEBYTECODE="1", COLUMNS="200")
        for exercise in all_exercises():
            command = as_course_user([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--target",
                                      "exercises", "-k", exercise.key])
            load_before, runs, verdicts = os.getloadavg()[0], [], set()
            for _ in range(REPEATS):
                start = time.perf_counter()
                done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=1800)
                runs.append(time.perf_counter() - start)
                verdicts.add(verdict_lines(done.stdout).get(exercise.heading, f"no verdict (exit {done.returncode})"))
            seconds = statistics.median(runs)
            verdict = "done" if verdicts == {"done"} else "; ".join(sorted(verdicts - {"done"}))
            target = exercise.wait_target_s  # the exercise's own target, if it has one: else figures only
            part.rows.append([exercise.heading, exercise.key, seconds, " / ".join(f"{s:.1f}" for s in runs),
                              f"{load_before:.2f}", verdict, target if target else "-"])
            if target:
                part.checks.append(Check(f"{exercise.key} verdict", seconds, target, higher_is_better=False, unit=" s"))
            if verdict != "done":
                part.notes.append(f"{exercise.key}: {verdict}")
    user = course_user() if os.geteuid() == 0 else os.environ.get("USER", "this user")
    part.notes.append(f"measured as `{user}`, serially, {REPEATS} times each (the median counts), in a copy of the "
                      "course with the solutions copied in")
    return part
