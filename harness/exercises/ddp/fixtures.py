"""Exercise 5's pytest fixtures: the stand-ins drawn and packed, and each run of the target made once per test run
(shared by the xdist workers)."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import minipets
from harness.exercises.ddp.runs import BATCH, PER_BREED, SOLUTIONS, Packed, Run, pack, run_ddp, run_single
from harness.offline import Ran
from harness.once import made_once, once_per_run


@pytest.fixture(scope="session")
def ddp_pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in pictures, drawn once per test run (shared by the xdist workers)."""
    return made_once(tmp_path_factory, "ddp-pictures",
                     lambda root: minipets.write_images(root / "images", per_breed=PER_BREED)) / "images"


def _packed(folder: Path, pictures: Path, tmp_path_factory: pytest.TempPathFactory) -> Packed:
    with once_per_run(tmp_path_factory, f"ddp-packed-{folder.name}") as root:
        record = root / "ran.json"
        if not record.exists():
            pack(folder, pictures, root / "packed", root / "work").ran.save(record)
        return Packed(root / "packed" / "pets.h5", sum(1 for _ in pictures.glob("*.jpg")), Ran.load(record))


def data_of(packed: Packed) -> Path:
    """The packed file, or the test fails with why the packing failed (a TODO of exercise 4, say)."""
    problems = packed.problems()
    if problems:
        pytest.fail(problems[0], pytrace=False)
    return packed.h5


def _once(tmp_path_factory: pytest.TempPathFactory, name: str, make) -> Run:
    with once_per_run(tmp_path_factory, name) as root:
        record = root / "ran.json"
        if not record.exists():
            make(root / "work").save(record)
        return Run.load(record)


@pytest.fixture(scope="session")
def ddp_packed(target_dir: Path, ddp_pictures: Path, tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """The stand-ins packed by the target's own pack.py (exercise 4a), once per test run."""
    return _packed(target_dir, ddp_pictures, tmp_path_factory)


@pytest.fixture(scope="session")
def ddp_reference(ddp_pictures: Path, tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """The stand-ins packed by solutions/pack.py: for the checks of the checks, which run broken copies of the
    solutions whatever the target."""
    return _packed(SOLUTIONS, ddp_pictures, tmp_path_factory)


@pytest.fixture(scope="session")
def ddp_single(target_dir: Path, ddp_packed: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """train.py of the target in one process (exercise 5a), once per test run."""
    data = data_of(ddp_packed)
    return _once(tmp_path_factory, f"ddp-single-{target_dir.name}", lambda work: run_single(target_dir, data, work))


@pytest.fixture(scope="session")
def ddp_two(target_dir: Path, ddp_packed: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """train_ddp.py of the target in two processes of BATCH pictures, in float64, once per test run."""
    data = data_of(ddp_packed)
    return _once(tmp_path_factory, f"ddp-two-{target_dir.name}",
                 lambda work: run_ddp(target_dir, data, work, 2, float64=True))


def _one(folder: Path, packed: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    data = data_of(packed)
    return _once(tmp_path_factory, f"ddp-one-{folder.name}",
                 lambda work: run_ddp(folder, data, work, 1, batch=2 * BATCH, float64=True))


@pytest.fixture(scope="session")
def ddp_one(target_dir: Path, ddp_packed: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """train_ddp.py of the target in one process of 2 x BATCH pictures, in float64: the same global batch as
    `ddp_two`."""
    return _one(target_dir, ddp_packed, tmp_path_factory)


@pytest.fixture(scope="session")
def ddp_reference_one(ddp_reference: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`ddp_one` of the solutions: what the broken copies' losses are compared with."""
    return _one(SOLUTIONS, ddp_reference, tmp_path_factory)
