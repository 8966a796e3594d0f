"""Exercise 7's pytest fixtures: the stand-in pictures and the target's runs, once per test run (shared by the
xdist workers)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.exercises.profiling.runs import RUNS, run_profile, write_pictures
from harness.offline import Ran
from harness.once import made_once, once_per_run


@pytest.fixture(scope="session")
def profiling_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mini-Pets JPEGs for 10 steps of 32 pictures."""
    return made_once(tmp_path_factory, "profiling-images", lambda root: write_pictures(root / "images")) / "images"


def profile_runs(script: Path, images: Path, root: Path, runs=RUNS) -> dict[tuple[str, str], tuple[Ran, Path]]:
    """Each (loader, precision) of `runs` by `script`, two at a time (each in its own folder): {run: (ran, its
    working directory)}. A finished set is read back, not run again."""
    def one(run: tuple[str, str]) -> tuple[Ran, Path]:
        workdir = root / "-".join(run)
        record = root / f"{'-'.join(run)}.json"
        if not record.exists():
            run_profile(script, images, workdir, *run).save(record)
        return Ran.load(record), workdir

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(runs, pool.map(one, runs)))


@pytest.fixture(scope="session")
def profiling_runs(target_dir: Path, profiling_images: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The target's profile_train.py: the start, the fix, and the fix in bf16."""
    with once_per_run(tmp_path_factory, f"profiling-runs-{target_dir.name}") as root:
        return profile_runs(target_dir / "profile_train.py", profiling_images, root)
