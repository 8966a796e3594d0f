"""Exercise 4's pytest fixtures: the stand-ins drawn and packed by the reference pack.py, and the target's runs, each
once per test run (shared by the xdist workers)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import packing
from harness.exercises import ROOT
from harness.exercises.formats.pictures import write_pictures
from harness.exercises.formats.shares import WORLD_SIZES, Shares, run_shares
from harness.offline import Ran
from harness.once import made_once, once_per_run


@dataclass(frozen=True)
class Pictures:
    """The stand-in pictures, and the same packed by the reference solutions/pack.py."""
    images: Path
    packed: Path

    @property
    def names(self) -> list[str]:
        return sorted(p.name for p in self.images.glob("*.jpg"))


@pytest.fixture(scope="session")
def formats_pictures(tmp_path_factory: pytest.TempPathFactory) -> Pictures:
    """Drawn and packed once per test run (shared by the xdist workers). The packing is the reference one, so that
    a check of datasets.py does not depend on the student's pack.py."""
    def make(root: Path) -> None:
        write_pictures(root / "images")
        ran = packing.pack(ROOT / "solutions" / "pack.py", root / "images", root / "packed", root / "pack")
        if ran.returncode != 0:
            raise RuntimeError("the reference solutions/pack.py failed:\n" + ran.explain())

    root = made_once(tmp_path_factory, "formats-pictures", make)
    return Pictures(root / "images", root / "packed")


@pytest.fixture(scope="session")
def formats_pack_run(target_dir: Path, formats_pictures: Pictures, tmp_path_factory: pytest.TempPathFactory):
    """The target's pack.py run once per test run on the stand-ins: (the run, its OUT folder)."""
    with once_per_run(tmp_path_factory, f"formats-pack-{target_dir.name}") as root:
        record = root / "ran.json"
        if not record.exists():
            packing.pack(target_dir / "pack.py", formats_pictures.images, root / "packed", root / "work").save(record)
        return Ran.load(record), root / "packed"


@pytest.fixture(scope="session")
def formats_shares(target_dir: Path, formats_pictures: Pictures, tmp_path_factory: pytest.TempPathFactory):
    """The target's time_loaders.py as simulated jobs of 1 (outside Slurm), 2 (two DataLoader workers per task) and
    3 tasks, once per test run: {world: Shares}."""
    found = {}
    for world in WORLD_SIZES:
        tasks = 0 if world == 1 else world
        root = made_once(tmp_path_factory, f"formats-shares-{target_dir.name}-{world}", lambda root: run_shares(
            target_dir, formats_pictures.packed, formats_pictures.images, tasks, root, workers=2 if world == 2 else 0))
        found[world] = Shares(tasks, root)
    return found
