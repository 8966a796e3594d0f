"""The course's exercises: one module or package each, and the registry the generic parts of the harness loop over.

A module `harness/exercises/<key>.py`, or a package `harness/exercises/<key>/` split by concern (`checks.py`,
`runs.py`, `cluster.py`, `fixtures.py`, ...), holds everything the harness knows about one exercise:

* `EXERCISE = Exercise(...)` (in a package's `__init__.py`): its number, title and day, the student's files, the
  lesson page, the test modules whose checks make up its self-check (`pytest --target exercises`), and its cluster
  jobs (`pytest --cluster`);
* its pytest fixtures (the module, or the package and its `fixtures.py`, is loaded as a pytest plugin);
* its cluster jobs' verdicts (`ClusterJob.check`) and login-node steps (`ClusterJob.prepare`).

The self-check, the cluster run and the site profiles loop over `all_exercises()` and name no exercise, so adding an
exercise touches only its own files, `_toc.yml` and the site profiles (CONTRIBUTING.md walks through it).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from harness.references import BETTER

# The registry is the bottom of the harness's dependencies: harness.sites reads each job's own keys from it, and
# harness.cluster_run drives its jobs; it imports neither. A job's check gets a `cluster_run.JobResult`, its
# preparation the `cluster_run.ClusterRun` (both passed in, never imported here).
ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class ClusterJob:
    """One batch job of `pytest --cluster`: a course sbatch file, the programs beside it, and its verdict."""
    name: str  # the key of [jobs.<name>] in a site profile, and the job's folder in slurm-out/<run-tag>/
    sbatch: str  # a file in slurm/, submitted exactly as the book shows it
    programs: tuple[str, ...]  # files from solutions/ (or exercises/) copied beside it: the job starts there
    check: Callable[[Any], tuple[dict, list[str]]]  # JobResult -> (figures, problems), after the generic checks
    gpus: bool = True  # the job must get the site's GPUs (gpus_per_node), or its verdict fails
    needs_venv: bool = False  # runs in the course venv (made from venv-template/ first where the site says how)
    prepare: Callable[[Any, Path], dict[str, str]] | None = None  # (ClusterRun, its folder) -> env for the job
    settings: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # its own keys of [jobs.<name>]: (type, default)
    # the figures its check reports that a site profile may hold to a reference ([jobs.<name>.reference],
    # harness/references.py): figure -> which is better, "higher" (a rate) or "lower" (a time)
    figures: dict[str, str] = field(default_factory=dict)
    follow_ups: int = 0  # jobs submitted behind it with --dependency=afterany, each on the one before (a chain)
    requeues_itself: bool = False  # it may go back to the queue by itself any number of times (scontrol requeue)
    # sbatch options of a baseline run: the same script once more with these overrides of its #SBATCH lines (e.g.
    # `--nodes=1 --gres=gpu:1`), submitted with it from its own folder `<job>/baseline/`; its check gets that run as
    # `result.baseline` (a JobResult, None where none ran), to set its own figures against (a scaling efficiency)
    baseline: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        wrong = {figure: better for figure, better in self.figures.items() if better not in BETTER}
        if wrong:
            raise ValueError(f"cluster job `{self.name}` declares figures {wrong}: say which is better, "
                             "\"higher\" or \"lower\"")


@dataclass(frozen=True)
class BenchPart:
    """A part of `python -m bench` that an exercise owns: `module` (in its package) has `run(**options)` returning
    a bench.report.Part; `options` are its command-line options, name -> (type, default, help)."""
    name: str
    module: str
    options: dict[str, tuple[Any, Any, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Exercise:
    key: str  # short name, as in `pytest --target exercises -k <key>`
    number: int  # its place in the course
    title: str
    day: int
    lesson: str  # the book page, e.g. "book/cats.md"
    programs: tuple[str, ...]  # the student's files, in exercises/ and (finished) in solutions/
    tests: tuple[str, ...]  # test modules, e.g. "tests/test_cats.py": their checks are its self-check
    cluster_jobs: tuple[ClusterJob, ...] = ()
    wait_target_s: float | None = None  # bench's target for a student's wait for the self-check's verdict
    bench_parts: tuple[BenchPart, ...] = ()  # its own parts of `python -m bench`

    @property
    def heading(self) -> str:
        return f"Exercise {self.number}: {self.title}"


def exercise_modules() -> list[str]:
    """`harness.exercises.<key>` for every exercise, a module or a package (holding EXERCISE in its __init__)."""
    return [f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]


def module_names() -> list[str]:
    """What pytest loads as plugins: every exercise module or package, and a package's `fixtures` module."""
    names = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        names.append(f"{__name__}.{info.name}")
        if info.ispkg and (Path(__path__[0]) / info.name / "fixtures.py").is_file():
            names.append(f"{__name__}.{info.name}.fixtures")
    return names


@lru_cache(maxsize=None)
def all_exercises() -> tuple[Exercise, ...]:
    """Every exercise of the course, in course order."""
    found = [importlib.import_module(name).EXERCISE for name in exercise_modules()]
    numbers = [e.number for e in found]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"two exercise modules share a number: {sorted(numbers)}")
    return tuple(sorted(found, key=lambda e: e.number))


def cluster_jobs(days: tuple[int, ...] | None = None) -> dict[str, tuple[Exercise, ClusterJob]]:
    """Every cluster job by name (of the given days), with its exercise."""
    jobs = {}
    for exercise in all_exercises():
        if days is not None and exercise.day not in days:
            continue
        for job in exercise.cluster_jobs:
            if job.name in jobs:
                raise ValueError(f"two exercises declare the cluster job `{job.name}`")
            jobs[job.name] = (exercise, job)
    return jobs


def exercise_of_test(nodeid: str) -> Exercise | None:
    """The exercise whose self-check a test (by pytest node id) belongs to, if any."""
    module = Path(nodeid.split("::", 1)[0].replace("\\", "/")).name
    for exercise in all_exercises():
        if any(module == Path(test).name for test in exercise.tests):
            return exercise
    return None
