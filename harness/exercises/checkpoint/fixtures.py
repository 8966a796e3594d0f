"""The pytest fixtures of exercise 6: runs of train_ckpt.py, each made once per test run and shared by the xdist
workers. The pictures are exercise 5's (the `ddp_packed` and `ddp_reference` fixtures of harness/exercises/ddp/fixtures.py):
the same stand-ins packed by the target's pack.py, or by the solutions' for the checks of the checks."""
from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from harness.exercises import ROOT
from harness.exercises.ddp.fixtures import data_of
from harness.exercises.ddp.runs import LOG, PER_BREED, Packed
from harness.exercises.checkpoint.checks import load_checkpoint, signal_of
from harness.exercises.checkpoint.runs import CHECKPOINT, SAVING, SLOW_SAVE, Start, log_lines, start_run
from harness.offline import Ran
from harness.once import once_per_run
from harness.report import read_reports

SOLUTIONS = ROOT / "solutions"
SBATCH = ROOT / "slurm" / "checkpoint.sbatch"
NPROC, EPOCHS, BATCH = 2, 3, 16  # 2 processes of 16 pictures: 9 steps an epoch on the 37 x PER_BREED stand-ins
STEPS_PER_EPOCH = 37 * PER_BREED // (NPROC * BATCH)
STOP_AT = STEPS_PER_EPOCH + 3  # the signal comes in epoch 1, after a few of its steps: a resume inside an epoch


def stop_signal() -> signal.Signals:
    """The signal the course's batch script asks Slurm for (#SBATCH --signal) and passes on to the training."""
    name, _ = signal_of(SBATCH)
    return signal.Signals[f"SIG{name}"]


def run(folder: Path, data: Path, workdir: Path, **how) -> Start:
    return start_run(folder, data, workdir, NPROC, epochs=EPOCHS, batch=BATCH, **how)


def keep_as_stopped(workdir: Path) -> None:
    """Copies of the checkpoint and the log as a stopped start left them (`stopped-*`), before the next start."""
    for name in (CHECKPOINT, LOG):
        if (workdir / name).is_file():
            shutil.copy2(workdir / name, workdir / f"stopped-{name}")


def stopped_and_resumed(folder: Path, data: Path, workdir: Path) -> tuple[Start, Start]:
    """Start, stop with the course's signal at STOP_AT log lines, start again in the same folder."""
    first = run(folder, data, workdir, stop_signal=stop_signal(), signal_at=STOP_AT)
    keep_as_stopped(workdir)
    return first, run(folder, data, workdir)


def killed_during_save(folder: Path, data: Path, workdir: Path) -> tuple[Start, dict, Start]:
    """Start and stop (a checkpoint), note what it saved, then start again through SLOW_SAVE, stop a few steps
    later, and SIGKILL the run while it is half-way through writing the next checkpoint."""
    first = run(folder, data, workdir, stop_signal=stop_signal(), signal_at=STOP_AT)
    keep_as_stopped(workdir)
    state, _ = load_checkpoint(workdir / CHECKPOINT)
    before = {"epoch": state.get("epoch"), "step": state.get("step")} if state else {}
    launcher = workdir / "slow_save.py"
    launcher.write_text(SLOW_SAVE)
    second = run(folder, data, workdir, stop_signal=stop_signal(), signal_at=log_lines(workdir) + 2,
                 kill_on=SAVING, launcher=launcher)
    return first, before, second


def _saved(root: Path, make) -> list:
    """The Starts (and dicts) `make(workdir)` returns, made once per test run."""
    record = root / "starts.json"
    if not record.exists():
        parts = make(root / "work")
        for n, part in enumerate(parts):
            if isinstance(part, Start):
                part.ran.save(root / f"start-{n}.json")
        record.write_text(json.dumps([{"signalled_at": p.signalled_at, "killed": p.killed, "reports_dir": p.reports_dir}
                                      if isinstance(p, Start) else {"dict": p} for p in parts]))
    loaded = []
    for n, part in enumerate(json.loads(record.read_text())):
        if "dict" in part:
            loaded.append(part["dict"])
            continue
        ran = Ran.load(root / f"start-{n}.json")
        folder = Path(part["reports_dir"])
        ran.reports = read_reports(folder) if folder.is_dir() else []
        loaded.append(Start(ran, **part))
    return loaded


def starts(tmp_path_factory: pytest.TempPathFactory, name: str, folder: Path, packed: Packed, make) -> list:
    """`make(folder, data, workdir)` on the pictures `packed` (the test fails if their packing did), once per test
    run, in the run's folder `ckpt-{name}`: the Starts (and dicts) it returns."""
    data = data_of(packed)
    with once_per_run(tmp_path_factory, f"ckpt-{name}") as root:
        return _saved(root, lambda work: make(folder, data, work))


def whole(folder: Path, data: Path, workdir: Path) -> list[Start]:
    """One start from the beginning to the end, never stopped."""
    return [run(folder, data, workdir)]


def copy_programs(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for program in ("datasets.py", "train.py", "train_ddp.py", "train_ckpt.py"):  # it imports exercise 5's files
        shutil.copy2(source / program, folder / program)
    return folder


@pytest.fixture(scope="session")
def checkpoint_uninterrupted(target_dir: Path, ddp_packed: Packed, tmp_path_factory) -> Start:
    """train_ckpt.py of the target from start to end, never stopped (in float64, as every compared run)."""
    return starts(tmp_path_factory, f"whole-{target_dir.name}", target_dir, ddp_packed, whole)[0]


@pytest.fixture(scope="session")
def checkpoint_resumed(target_dir: Path, ddp_packed: Packed, tmp_path_factory) -> tuple[Start, Start]:
    """train_ckpt.py of the target stopped by the course's signal in epoch 1, then started again."""
    return tuple(starts(tmp_path_factory, f"resumed-{target_dir.name}", target_dir, ddp_packed, stopped_and_resumed))


@pytest.fixture(scope="session")
def checkpoint_killed(target_dir: Path, ddp_packed: Packed, tmp_path_factory) -> tuple[Start, dict, Start]:
    """train_ckpt.py of the target stopped once, then killed with SIGKILL half-way through its next save."""
    return tuple(starts(tmp_path_factory, f"killed-{target_dir.name}", target_dir, ddp_packed, killed_during_save))


@pytest.fixture(scope="session")
def checkpoint_reference(ddp_reference: Packed, tmp_path_factory) -> Start:
    """The solutions' uninterrupted run: what the broken copies are compared with."""
    return starts(tmp_path_factory, "whole-reference", SOLUTIONS, ddp_reference, whole)[0]
