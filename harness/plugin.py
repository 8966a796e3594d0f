"""The pytest plugin: every command-line option and marker of the harness lives here, and nowhere else."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.exercises import module_names
from harness.requires import require_root

ROOT = Path(__file__).resolve().parent.parent

# The exercise modules import each other's helpers: rewrite their asserts whichever pytest loads first.
pytest.register_assert_rewrite(*module_names())

# Fixture modules, one per concern, and every exercise module (harness/exercises/: each holds its own fixtures).
pytest_plugins = [
    "harness.localcluster",  # the local test cluster: local_slurm fixture, cancels each test's jobs
    "harness.selfcheck", "harness.browser",  # exercise verdicts for --target exercises; the built book in a browser
    "harness.fixtures_cluster",  # pytest --cluster: submit, wait for and judge the GPU jobs
    *module_names(),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("course", "Deep-learning course harness")
    group.addoption("--cluster", action="store_true", default=False,
                    help="submit the GPU versions with sbatch to the cluster of --site and verify them (their "
                         "figures too, where the site profile holds them to a [jobs.<name>.reference])")
    group.addoption("--site", default=None, metavar="NAME",
                    help="site profile slurm/sites/NAME.toml (default: the one whose host pattern matches)")
    group.addoption("--target", default="solutions", choices=("solutions", "exercises"),
                    help="check the reference solutions (default) or the student versions in exercises/")
    group.addoption("--day", default="1", metavar="DAYS",
                    help="with --cluster: the course days whose jobs are submitted, e.g. 1 (default), 2, 3, 1,2 or "
                         "all (day 2 runs on two nodes: see the README for each day's cost)")
    group.addoption("--cancel-orphans", action="store_true", default=False,
                    help="with --cluster: first cancel the jobs that earlier, killed runs left in the queue")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--cluster` runs only cluster jobs; a plain run never submits to a cluster."""
    cluster = config.getoption("--cluster")
    keep, drop = [], []
    for item in items:
        (keep if (item.get_closest_marker("cluster") is not None) == cluster else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `root` skips without root (and fails in CI, where run-tests.sh runs these as root)."""
    if item.get_closest_marker("root") is not None:
        require_root(f"{item.name} (run-tests.sh runs the `root` tests as root: pytest -m root)")


@pytest.fixture(scope="session")
def course_root() -> Path:
    """The repository root: exercises/, solutions/, slurm/ and book/ are found from here."""
    return ROOT


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> str:
    """Which code is checked: "solutions" or "exercises" (the student's own work)."""
    return request.config.getoption("--target")


@pytest.fixture(scope="session")
def target_dir(course_root: Path, target: str) -> Path:
    return course_root / target
