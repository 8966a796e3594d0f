"""The course's exercises: one module each, and the registry the generic parts of the harness loop over.

A module `harness/exercises/<key>.py` holds everything the harness knows about one exercise:

* `EXERCISE = Exercise(...)`: its number, title and day, the student's files, the lesson page, the test modules
  whose checks make up its self-check (`pytest --target exercises`), and its cluster jobs (`pytest --cluster`);
* its pytest fixtures (the module is loaded as a pytest plugin);
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
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # only for the annotations: importing them here would load the Slurm client at collection
    from harness.cluster_run import ClusterRun, JobResult

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class ClusterJob:
    """One batch job of `pytest --cluster`: a course sbatch file, the programs beside it, and its verdict."""
    name: str  # the key of [jobs.<name>] in a site profile, and the job's folder in slurm-out/<run-tag>/
    sbatch: str  # a file in slurm/, submitted exactly as the book shows it
    programs: tuple[str, ...]  # files from solutions/ (or exercises/) copied beside it: the job starts there
    check: Callable[[JobResult], tuple[dict, list[str]]]  # -> (figures, problems), after the generic checks
    gpus: bool = True  # the job must get the site's GPUs (gpus_per_node), or its verdict fails
    needs_venv: bool = False  # runs in the course venv (made from venv-template/ first where the site says how)
    prepare: Callable[[ClusterRun, Path], dict[str, str]] | None = None  # login-node step: -> env for the job
    settings: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # its own keys of [jobs.<name>]: (type, default)
    cost: str = ""  # what it costs on the real machine, for the instructor's overview
    follow_ups: int = 0  # jobs submitted behind it with --dependency=afterany, each on the one before (a chain)
    requeues_itself: bool = False  # it may go back to the queue by itself any number of times (scontrol requeue)


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

    @property
    def heading(self) -> str:
        return f"Exercise {self.number}: {self.title}"


def module_names() -> list[str]:
    """`harness.exercises.<key>` for every exercise module, for pytest to load as plugins."""
    return [f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]


@lru_cache(maxsize=None)
def all_exercises() -> tuple[Exercise, ...]:
    """Every exercise of the course, in course order."""
    found = [importlib.import_module(name).EXERCISE for name in module_names()]
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
