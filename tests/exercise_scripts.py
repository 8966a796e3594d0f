"""The self-check's test that an exercise's batch scripts pass the course checker, written once for every exercise:
its test module binds it as `test_the_batch_script_passes_the_course_checker = batch_script_test(EXERCISE)`, so that
the test is that module's and `pytest --target exercises` counts it for that exercise (harness/selfcheck.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from harness.coursecheck import exercise_script_problems
from harness.exercises import Exercise


def batch_script_test(exercise: Exercise) -> Callable[[Path], None]:
    """The test for the batch scripts of `exercise`'s cluster jobs, which the student edits and submits."""
    def test(course_root: Path) -> None:
        problems = exercise_script_problems(course_root, exercise)
        assert not problems, str(problems[0])

    scripts = ", ".join(f"slurm/{job.sbatch}" for job in exercise.cluster_jobs)
    test.__doc__ = (f"{scripts}, which the student edits and submits, by the course checker's rules (#SBATCH lines "
                    "before the first command, GPUs asked for, the cores passed on to srun).")
    return test
