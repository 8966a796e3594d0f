"""Fixtures for the cat classifier: temporary fastai/torch caches (filled or empty) and one offline training run.

Everything lives under pytest's temporary folders; the user's ~/.fastai and ~/.cache/torch are never used,
because every child process gets its own FASTAI_HOME and TORCH_HOME.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from harness import minipets
from harness.offline import run_offline
from harness.once import once_per_run

PER_BREED = 8  # 296 pictures: enough to learn, small enough for a two-core CPU
# A short CPU run that still learns the stand-in reliably (see tests/test_cats.py for the bar).
SMALL_RUN = ("--size", "32", "--batch-size", "16", "--epochs", "3", "--workers", "0")
RUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Caches:
    """A pair of cache folders and the environment that points a child process at them."""

    fastai_home: Path
    torch_home: Path

    @property
    def images(self) -> Path:
        return self.fastai_home / "data" / minipets.DATASET_FOLDER / "images"

    @property
    def checkpoints(self) -> Path:
        return self.torch_home / "hub" / "checkpoints"

    def env(self) -> dict[str, str]:
        # One math thread: on a shared two-core machine (pytest -n auto, other tests) OpenMP threads that
        # spin-wait for each other made training ten times slower than a single thread.
        env = dict(os.environ, FASTAI_HOME=str(self.fastai_home), TORCH_HOME=str(self.torch_home),
                   PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore::FutureWarning", OMP_NUM_THREADS="1")
        env.pop("SLURM_CPUS_PER_TASK", None)
        return env


@dataclass
class CatRun:
    """One run of cats.py: its working folder (runs/, models/), its output and the parsed RESULT line."""

    workdir: Path
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, float | str] = field(default_factory=dict)

    @property
    def runs_dir(self) -> Path:
        return self.workdir / "runs"

    @property
    def model_file(self) -> Path:
        return self.workdir / "models" / "model.pth"

    def save(self, path: Path) -> None:
        """As JSON, for the other xdist workers (see cat_run)."""
        path.write_text(json.dumps({**asdict(self), "workdir": str(self.workdir)}))

    @classmethod
    def load(cls, path: Path) -> "CatRun":
        fields = json.loads(path.read_text())
        return cls(**{**fields, "workdir": Path(fields["workdir"])})

    def explain(self) -> str:
        """The end of the output, for assertion messages."""
        return f"exit code {self.returncode}\n--- stdout (end) ---\n{self.stdout[-2000:]}\n--- stderr (end) ---\n{self.stderr[-3000:]}"


def parse_result(stdout: str) -> dict[str, float | str]:
    """`RESULT key=value ...` -> dict, numbers as floats; empty when the line is missing."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            pairs = (item.split("=", 1) for item in line.split()[1:] if "=" in item)
            result: dict[str, float | str] = {}
            for key, value in pairs:
                try:
                    result[key] = float(value)
                except ValueError:
                    result[key] = value
            return result
    return {}


def run_cats_offline(script: Path, caches: Caches, workdir: Path, *args: str, timeout: float = RUN_TIMEOUT_S) -> CatRun:
    """Run `script` in `workdir` with no network, using `caches`."""
    workdir.mkdir(parents=True, exist_ok=True)
    done = run_offline([sys.executable, str(script), *args], env=caches.env(), cwd=workdir, timeout=timeout)
    return CatRun(workdir, done.returncode, done.stdout, done.stderr, parse_result(done.stdout))


@pytest.fixture(scope="session")
def minipets_originals(tmp_path_factory: pytest.TempPathFactory) -> Caches:
    """Stand-ins drawn once per test run (shared by the xdist workers); other fixtures copy or link them."""
    with once_per_run(tmp_path_factory, "minipets-originals") as root:
        caches = Caches(root / "fastai", root / "torch")
        complete = root / "complete"
        if not complete.exists():
            minipets.seed_fastai_home(caches.fastai_home, per_breed=PER_BREED)
            minipets.seed_torch_home(caches.torch_home, "resnet34")
            complete.touch()
    return caches


def _seeded(originals: Caches, root: Path) -> Caches:
    caches = Caches(root / "fastai", root / "torch")
    minipets.seed_fastai_home(caches.fastai_home, images_from=originals.images)
    name = minipets.checkpoint_name("resnet34")
    minipets.seed_torch_home(caches.torch_home, "resnet34", checkpoint_from=originals.checkpoints / name)
    return caches


@pytest.fixture
def seeded_caches(minipets_originals: Caches, tmp_path: Path) -> Caches:
    """Fresh caches already holding Mini-Pets and resnet34 weights, as after a login-node download."""
    return _seeded(minipets_originals, tmp_path / "caches")


@pytest.fixture
def empty_caches(tmp_path: Path) -> Caches:
    """Fresh, empty caches, as on a compute node before anything was downloaded."""
    caches = Caches(tmp_path / "caches" / "fastai", tmp_path / "caches" / "torch")
    caches.fastai_home.mkdir(parents=True)
    caches.torch_home.mkdir(parents=True)
    return caches


@pytest.fixture(scope="session")
def cat_run(target_dir: Path, minipets_originals: Caches, tmp_path_factory: pytest.TempPathFactory) -> CatRun:
    """The target's cats.py trained once per test run (shared by the xdist workers), offline, with filled caches
    and a small, fast setting."""
    with once_per_run(tmp_path_factory, f"cat-run-{target_dir.name}") as root:
        record = root / "cat-run.json"
        if record.exists():
            return CatRun.load(record)
        caches = _seeded(minipets_originals, root / "caches")
        run = run_cats_offline(target_dir / "cats.py", caches, root / "work", *SMALL_RUN)
        run.save(record)
        return run
