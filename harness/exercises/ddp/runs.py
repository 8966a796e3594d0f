"""Exercise 5's runs on this machine: train.py in one process, train_ddp.py under torchrun_jsc --standalone (one
node, no Slurm), offline, with the reporter (harness/jobsite/sitecustomize.py, outside the student's code) recording
which pictures each rank trained on, epoch by epoch (COURSE_REPORT_DETAIL=dataloaders), and which files each process
opened for writing; the data is Mini-Pets stand-ins packed by the target's own pack.py (exercise 4a).
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import packing
from harness.exercises import ROOT
from harness.failures import TODO_RAISED, first_finish, why_failed
from harness.offline import Ran, program_env, run_program
from harness.report import Report

PER_BREED = 8  # 37 breeds x 8 = 296 pictures: a few seconds per epoch on a two-core CPU
# The knobs of the local runs. BATCH is per process: two processes of 16 make the same global batch as one of 32.
EPOCHS, BATCH, WORKERS = 4, 16, 1
KNOBS = ("DATA", "EPOCHS", "BATCH", "WORKERS")  # the programs' own variables: a run gets only the ones set here
FLOAT64_ENV = {"COURSE_FLOAT64": "1"}  # the compared runs compute in float64: see checks.TOLERANCE
RUN_TIMEOUT_S = 300
SOLUTIONS = ROOT / "solutions"
LOG, MODEL = "train_log.csv", "model.pt"  # what rank 0 writes into its working folder
EARLIER = {"pack.py": "exercise 4 (pack.py)", "datasets.py": "exercise 4 (datasets.py)",  # files it builds on,
           "train_ddp.py": "exercise 5 (train_ddp.py)"}  # and exercise 6 on train_ddp.py (its finish())


@dataclass(frozen=True)
class Packed:
    """Stand-in pictures packed by a pack.py: the file, the number of pictures, and the packing run."""
    h5: Path
    count: int
    ran: Ran

    def problems(self) -> list[str]:
        # pack.py is exercise 4's file: its TODO is named as that exercise's, whichever exercise packs
        return [] if self.ran.returncode == 0 and self.h5.is_file() else [failure(self.ran, "pack.py", own=())]


def pack(script_dir: Path, images: Path, out: Path, cwd: Path) -> Packed:
    """`python pack.py IMAGES OUT` of `script_dir` (harness.packing), as on the login node."""
    ran = packing.pack(script_dir / "pack.py", images, out, cwd)
    return Packed(out / "pets.h5", sum(1 for _ in images.glob("*.jpg")), ran)


def failure(ran: Ran, program: str, own: tuple[str, ...] | None = None) -> str:
    """One line on why a run failed (harness.failures.why_failed), naming the earlier exercise first when the TODO it
    raised is in a file of one (EARLIER) that is not the exercise's `own` (by default `program` itself): exercise
    4's pack.py or datasets.py, which exercises 5 and 6 build on, or, for exercise 6's train_ckpt.py, train_ddp.py."""
    found = TODO_RAISED.search(ran.stderr)
    if found:
        raised_in = re.findall(r'File "[^"]*?([\w.]+\.py)", line \d+', ran.stderr[:found.start()])
        if raised_in and raised_in[-1] in EARLIER and raised_in[-1] not in (own if own is not None else (program,)):
            return first_finish(EARLIER[raised_in[-1]], found.group(1))
    return why_failed(program, ran.returncode, ran.stderr, ran.stdout)



@dataclass
class Run:
    """One finished run of train.py or train_ddp.py: the program's exit, reports, seconds and leftovers (Ran), and
    what this exercise reads from them."""
    ran: Ran

    @property
    def workdir(self) -> Path:
        return self.ran.workdir  # type: ignore[return-value]

    @property
    def seconds(self) -> float:
        return self.ran.seconds

    @property
    def leftover(self) -> bool:
        """Processes of the run were still alive after its launcher ended (they were killed)."""
        return self.ran.leftover

    @property
    def workers(self) -> list[Report]:
        """The reports of the training processes (train_ddp.py or train.py), not of torchrun's own process."""
        return [r for r in self.ran.reports if r.program in ("train_ddp.py", "train.py")]

    def log(self) -> list[tuple[int, int, float, float]]:
        return read_log(self.workdir / LOG)

    def shards(self) -> dict[int, list[list[int]]]:
        """Rank -> the picture indices its DataLoader handed out, one list per epoch (probe.py's `loader_passes`,
        with COURSE_REPORT_DETAIL=dataloaders)."""
        return by_rank(self.workers, "loader_passes")

    def written(self) -> dict[int, list[str]]:
        """Rank -> the files its process opened for writing."""
        return by_rank(self.workers, "written")

    def explain(self) -> str:
        return self.ran.explain()

    def save(self, path: Path) -> None:
        self.ran.save(path)

    @classmethod
    def load(cls, path: Path) -> "Run":
        return cls(Ran.load(path))


def by_rank(workers: list[Report], field: str) -> dict[int, list]:
    """Rank -> a list its process's report holds (the reporter's own, else a probe's), for every training process
    that knows its rank."""
    found: dict[int, list] = {}
    for report in workers:
        if "rank" in report.rank:
            found.setdefault(int(report.rank["rank"]), []).extend(getattr(report, field, None)
                                                                  or report.probed.get(field, []))
    return found


def launch(argv: list[str], workdir: Path, env: dict[str, str], timeout: float = RUN_TIMEOUT_S) -> Run:
    """`argv` in `workdir` without internet (as on a compute node), the reporter on, as a process group
    (harness.offline.run_program: a run that outlives `timeout` is killed whole and fails)."""
    return Run(run_program(argv, cwd=workdir, env=env, offline=True, timeout=timeout))


def run_single(script_dir: Path, data: Path, workdir: Path, *, batch: int = 2 * BATCH, epochs: int = EPOCHS,
               workers: int = WORKERS) -> Run:
    """train.py of `script_dir` in one process, as in exercise 5a."""
    env = program_env(KNOBS, DATA=str(data), EPOCHS=str(epochs), BATCH=str(batch), WORKERS=str(workers))
    return launch([sys.executable, str(script_dir / "train.py")], workdir, env)


def run_ddp(script_dir: Path, data: Path, workdir: Path, nproc: int, *, batch: int = BATCH, epochs: int = EPOCHS,
            workers: int = WORKERS, timeout: float = RUN_TIMEOUT_S, float64: bool = False) -> Run:
    """train_ddp.py of `script_dir` in `nproc` processes on this machine: torchrun_jsc --standalone (one node, no
    Slurm), the reporter recording which pictures each rank's DataLoader handed out; in float64 for a run that is
    compared with another (see checks.TOLERANCE)."""
    env = program_env(KNOBS, DATA=str(data), EPOCHS=str(epochs), BATCH=str(batch), WORKERS=str(workers),
                      COURSE_REPORT_DETAIL="dataloaders", **(FLOAT64_ENV if float64 else {}))
    argv = [sys.executable, "-m", "torchrun_jsc", "--standalone", f"--nproc_per_node={nproc}",
            str(script_dir / "train_ddp.py")]
    return launch(argv, workdir, env, timeout)


def read_log(path: Path) -> list[tuple[int, int, float, float]]:
    """Rank 0's log: one (epoch, pictures in the step, seconds since the start, loss) per step."""
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        fields = line.split(",")
        if len(fields) == 4:
            rows.append((int(fields[0]), int(fields[1]), float(fields[2]), float(fields[3])))
    return rows

