"""A new exercise is its own files: CONTRIBUTING.md's walk-through, done for real in a scratch copy of the course.

A throw-away exercise `throwaway` is added to a copy (harness.course_copy) by its own files only: exercises/throwaway.py,
solutions/throwaway.py, slurm/throwaway.sbatch, book/throwaway.md, tests/test_throwaway.py, harness/exercises/throwaway/ (its
EXERCISE, its fixtures, its cluster job's verdict), one line in _toc.yml and a [jobs.throwaway] table in the local
profile. No other file of the copy changes. Then, in the copy:
* pytest collects its test and its cluster job, and the course checker finds nothing wrong with its files;
* the self-check (`--target exercises -k throwaway`) says "not done" with its TODO untouched, "done" once solved;
* `pytest --cluster --site local -k throwaway` submits its batch script to the local cluster and judges it (a Slurm
  test: it needs the cluster and a course user).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.course_copy import copy_course
from harness.exercises import ROOT
from tools.student_view import verdict_lines

KEY = "throwaway"
HEADING = "Exercise 99: a throw-away exercise"
TODO = "TODO: return the answer - what is six times seven?"

# The exercise's own files, relative to the course root
FILES = {
    "exercises/throwaway.py": '''
        """The throw-away exercise: print the answer. Run it from this folder: python throwaway.py"""


        def answer() -> int:
            # --- your work ---
            raise NotImplementedError("TODO: return the answer - what is six times seven?")
            # --- end of your work ---


        if __name__ == "__main__":
            print(f"answer: {answer()}")
        ''',
    "solutions/throwaway.py": '''
        """The throw-away exercise: print the answer. Run it from this folder: python throwaway.py"""


        def answer() -> int:
            # --- your work ---
            return 6 * 7
            # --- end of your work ---


        if __name__ == "__main__":
            print(f"answer: {answer()}")
        ''',
    "slurm/throwaway.sbatch": '''
        #!/bin/bash
        # The throw-away exercise on a compute node:   cd ~/course/exercises && sbatch ../slurm/throwaway.sbatch
        #SBATCH --account=training2441
        #SBATCH --nodes=1
        #SBATCH --job-name=throwaway
        #SBATCH --ntasks-per-node=1
        #SBATCH --cpus-per-task=1
        #SBATCH --gres=gpu:4
        #SBATCH --output=output.%j
        #SBATCH --error=error.%j
        #SBATCH --time=00:02:00
        #SBATCH --partition=dc-gpu
        #SBATCH --reservation=training2441

        module load Stages/2024
        module load GCC OpenMPI PyTorch
        export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"
        srun python throwaway.py
        ''',
    "book/throwaway.md": '''
        # Exercise 99: a throw-away exercise

        :::{admonition} Learning objectives
        :class: tip
        After this lesson you can print the answer.
        :::

        :::{admonition} Time
        :class: note
        **Teaching:** 1 min · **Exercises:** 6 min
        :::

        ```{literalinclude} ../exercises/throwaway.py
        :language: python
        ```

        :::{admonition} Key points
        :class: important
        - The answer is printed by `throwaway.py`.
        :::
        ''',
    "tests/test_throwaway.py": '''
        """The throw-away exercise: throwaway.py prints the answer."""
        from harness.failures import why_failed


        def test_throwaway_prints_the_answer(throwaway_run):
            assert throwaway_run.returncode == 0, why_failed("throwaway.py", throwaway_run.returncode, throwaway_run.stderr)
            assert "answer: 42" in throwaway_run.stdout, "throwaway.py should print `answer: 42`"
        ''',
    "harness/exercises/throwaway/__init__.py": '''
        """The throw-away exercise of tests/test_new_exercise.py: its registry entry and its cluster job's verdict."""
        from harness.exercises import ClusterJob, Exercise


        def check_throwaway_job(result):
            """The job printed the answer the site profile expects ([jobs.throwaway] answer)."""
            want = result.settings["answer"]
            said = [line for line in result.output.splitlines() if line.startswith("answer: ")]
            if said != [f"answer: {want}"]:
                return {}, [f"throwaway.py printed {said or 'no answer line'}, not `answer: {want}`"]
            return {"answer": want}, []


        EXERCISE = Exercise(
            key="throwaway", number=99, title="a throw-away exercise", day=2, lesson="book/throwaway.md",
            programs=("throwaway.py",), tests=("tests/test_throwaway.py",),
            cluster_jobs=(ClusterJob(name="throwaway", sbatch="throwaway.sbatch", programs=("throwaway.py",),
                                     check=check_throwaway_job, settings={"answer": (int, 0)}),),
        )
        ''',
    "harness/exercises/throwaway/fixtures.py": '''
        """The throw-away exercise's fixture: the target's throwaway.py run once per test."""
        import sys

        import pytest

        from harness.offline import program_env, run_program


        @pytest.fixture
        def throwaway_run(target_dir, tmp_path):
            return run_program([sys.executable, str(target_dir / "throwaway.py")], cwd=tmp_path, env=program_env(),
                               offline=True, timeout=60)
        ''',
}
TOC_LINE = "      - file: book/throwaway\n"  # under the last "Day 2" part's chapters
PROFILE_TABLE = "\n[jobs.throwaway]\ncpus_per_task = 1\nanswer = 42\n"


def add_exercise(course: Path) -> list[str]:
    """Write the exercise's files, its _toc.yml line and its [jobs.throwaway] table into `course`; returns what
    changed, as git would list it (new files, and the two edited ones)."""
    for name, text in FILES.items():
        path = course / name
        assert not path.exists(), f"{name} exists in the course already: the throw-away exercise needs another key"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    toc = (course / "_toc.yml").read_text()
    day2 = re.search(r'^  - caption: "?Day 2\b.*\n    chapters:\n(?:      - file: .*\n)+', toc, re.MULTILINE)
    assert day2, "_toc.yml has no part captioned Day 2 with chapters"
    (course / "_toc.yml").write_text(toc[:day2.end()] + TOC_LINE + toc[day2.end():])
    profile = course / "slurm" / "sites" / "local.toml"
    profile.write_text(profile.read_text() + PROFILE_TABLE)
    return sorted([*FILES, "_toc.yml", "slurm/sites/local.toml"])


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the course with the throw-away exercise added by its own files."""
    copy = copy_course(ROOT, tmp_path_factory.mktemp("course") / "course")
    add_exercise(copy)
    os.chmod(copy.parent, 0o755)
    return copy


def pytest_in(course: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess:
    """This Python's pytest in the copy (its own harness/ and tests/), as a student or instructor runs it there."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    base.update(COLUMNS="200", PYTHONDONTWRITEBYTECODE="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=course, env=base,
                          capture_output=True, text=True, timeout=timeout)


def test_the_copy_changes_only_the_exercises_own_files_and_two_lines(course: Path) -> None:
    """What the walk-through asks for and nothing else: new files of the exercise, _toc.yml and the local profile."""
    changed = subprocess.run(["git", "-c", f"safe.directory={ROOT}", "-C", str(ROOT), "ls-files"],
                             capture_output=True, text=True).stdout.split()
    differ = [name for name in changed if (course / name).is_file() and (course / name).read_bytes()
              != (ROOT / name).read_bytes()]
    assert sorted(differ) == ["_toc.yml", "slurm/sites/local.toml"], differ
    assert all((course / name).is_file() and not (ROOT / name).exists() for name in FILES)


def test_the_new_exercise_is_collected_and_passes_the_course_checker(course: Path) -> None:
    collected = pytest_in(course, "--collect-only", "-q", "tests/test_throwaway.py")
    assert "tests/test_throwaway.py::test_throwaway_prints_the_answer" in collected.stdout, collected.stdout[-3000:]
    jobs = pytest_in(course, "--collect-only", "-q", "--cluster", "--site", "local", "--day", "2", "tests/cluster")
    assert "tests/cluster/test_jobs.py::test_cluster_job_passes_its_verdict[throwaway]" in jobs.stdout, \
        jobs.stdout[-3000:] + jobs.stderr[-3000:]
    checker = subprocess.run([sys.executable, "-m", "harness.coursecheck", str(course)], cwd=course,
                             capture_output=True, text=True, timeout=300)
    assert checker.returncode == 0, checker.stdout


def test_the_self_check_says_not_done_untouched_and_done_once_solved(course: Path, tmp_path: Path) -> None:
    untouched = pytest_in(course, "--target", "exercises", "-k", KEY)
    assert verdict_lines(untouched.stdout).get(HEADING) == f"not done: {TODO}", untouched.stdout[-3000:]
    solved = copy_course(course, tmp_path / "solved")
    shutil.copy2(solved / "solutions" / "throwaway.py", solved / "exercises" / "throwaway.py")
    done = pytest_in(solved, "--target", "exercises", "-k", KEY)
    assert verdict_lines(done.stdout).get(HEADING) == "done", done.stdout[-3000:]
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.slurm
def test_the_new_exercise_is_submitted_and_judged_on_the_local_cluster(local_slurm_available, course: Path,
                                                                       tmp_path: Path) -> None:
    """`pytest --cluster --site local --day 2 -k throwaway` in the copy: its batch script is submitted as the book
    shows it, followed to its end, and judged (the generic checks, then its own: the answer of [jobs.throwaway])."""
    out = tmp_path / "slurm-out"
    run = pytest_in(course, "--cluster", "--site", "local", "--day", "2", "-k", KEY, "tests/cluster",
                    env={"COURSE_SLURM_OUT": str(out), "PYTHONUNBUFFERED": "1"}, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"submitted throwaway as job \d+ \(throwaway\.sbatch", run.stdout), run.stdout[-4000:]
    summaries = list(out.glob("*/summary.json"))
    assert len(summaries) == 1, run.stdout[-4000:]
    verdicts = json.loads(summaries[0].read_text())["verdicts"]
    assert list(verdicts) == [KEY], verdicts
    assert verdicts[KEY]["passed"] and verdicts[KEY]["figures"]["answer"] == 42, verdicts[KEY]
