"""Exercise 4c: time_loaders.py as the tasks of a simulated srun step, and the check that each task read its own share
of the data set: from the files each opened (the reporter, harness/jobsite/sitecustomize.py,
COURSE_REPORT_DETAIL=reads=*.jpg: an audit hook, outside the student's code) and from the lines it printed.
"""
from __future__ import annotations

import math
import os
import re
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.failures import why_failed
from harness.offline import Ran, program_env, run_program
from harness.report import cuda_standin_env, read_files

WORLD_SIZES = (1, 2, 3)  # tasks of the simulated jobs (1: outside Slurm)
RUN_TIMEOUT_S = 300
KNOBS = ("PETS_PACKED", "PETS_IMAGES", "WORKERS")  # the programs' own variables: a run gets only the ones set here
FORMATS = ("jpeg-folder", "hdf5", "arrow")  # the names time_loaders.py prints
FIGURE = r"(\d[\d.]*(?:e[-+]?\d+)?)"  # a printed figure: 2.31, 812.4 (an exponent is read too)
LINE = re.compile(rf"^rank (\d+)/(\d+) (\S+) from (.+): (\d+) images in {FIGURE} s = {FIGURE} images/s on (\S+)\s*$",
                  re.MULTILINE)


@dataclass
class Shares:
    """The tasks of one simulated job step: one process of time_loaders.py per rank, as srun starts them."""
    world: int  # tasks; 0 = started without any Slurm variable (outside a job)
    root: Path

    def rank_dir(self, rank: int) -> Path:
        return self.root / f"rank-{rank}"

    def runs(self) -> list[Ran]:
        return [Ran.load(self.rank_dir(rank) / "ran.json") for rank in range(max(self.world, 1))]

    def opened(self) -> dict[int, list[str]]:
        """The picture files each rank opened (its DataLoader workers included), in order, by file name."""
        found: dict[int, list[str]] = {rank: [] for rank in range(max(self.world, 1))}
        for rank in found:
            for files in read_files(self.rank_dir(rank) / ".reports").values():
                found[rank].extend(os.path.basename(path) for path in files)
        return found

    @property
    def output(self) -> str:
        """What srun would collect: every rank's output."""
        return "".join(run.stdout for run in self.runs())

    @property
    def reports(self) -> list:
        return sorted((report for run in self.runs() for report in run.reports), key=lambda r: r.started)


def run_shares(script_dir: Path, packed: Path, images: Path | None, world: int, root: Path, *, workers: int = 0,
               step: int = 0, gpu_per_task: bool = False) -> Shares:
    """Start time_loaders.py of `script_dir` once per rank, two at a time, with SLURM_NTASKS/SLURM_PROCID set (none
    at all when `world` is 0), the reporter noting every picture file they open, reading `packed` and (when given)
    the JPEG folder `images`. `gpu_per_task`: the ranks are tasks of one node that psslurm gave one GPU each
    (CUDA_VISIBLE_DEVICES=<local id>), on the reporter's CUDA stand-in."""
    shares = Shares(world, root)
    host = socket.gethostname()

    def one(rank: int) -> None:
        slurm = {} if world == 0 else {
            "SLURM_NTASKS": str(world), "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank), "SLURM_NODEID": "0",
            "SLURM_STEP_ID": str(step), "SLURM_JOB_ID": "4242", "SLURMD_NODENAME": host}
        gpus = {"CUDA_VISIBLE_DEVICES": str(rank), **cuda_standin_env(gpus_real=False)} if gpu_per_task else {}
        env = program_env(KNOBS, COURSE_REPORT_DETAIL="reads=*.jpg", **slurm, **gpus)
        folder = ["--images", str(images)] if images else []
        ran = run_program([sys.executable, str(script_dir / "time_loaders.py"), str(packed), *folder,
                           "--workers", str(workers)], cwd=shares.rank_dir(rank), env=env, timeout=RUN_TIMEOUT_S)
        ran.save(shares.rank_dir(rank) / "ran.json")

    with ThreadPoolExecutor(max_workers=2) as pool:  # two at a time: a laptop's cores, and this machine's
        list(pool.map(one, range(max(world, 1))))
    return shares


def failed(runs: list[Ran]) -> list[str]:
    """A rank that failed, in one line (harness.failures.why_failed): the TODO it raised, else what raised."""
    for rank, ran in enumerate(runs):
        if ran.returncode != 0:
            return [why_failed(f"time_loaders.py as rank {rank}", ran.returncode, ran.stderr, ran.stdout)]
    return []


def printed(output: str) -> list[dict]:
    """Every `rank R/W FORMAT from PATH: N images in S s = X images/s on DEVICE` line."""
    return [{"rank": int(m[1]), "ntasks": int(m[2]), "format": m[3], "path": m[4].strip(), "images": int(m[5]),
             "seconds": float(m[6]), "rate": float(m[7]), "device": m[8]} for m in LINE.finditer(output)]


def share_problems(shares: Shares, names: list[str]) -> list[str]:
    """The ranks together read every picture once, each its own share: from the files they opened (the JPEG
    folder) and the counts they printed (every format)."""
    runs = shares.runs()
    failure = failed(runs)
    if failure:
        return failure
    world = max(shares.world, 1)
    share = math.ceil(len(names) / world)  # DistributedSampler pads the last share with repeats
    problems = []
    lines = printed(shares.output)
    for rank in range(world):
        mine = {line["format"]: line for line in lines if line["rank"] == rank}
        missing = [f for f in FORMATS if f not in mine]
        if missing:
            return [f"rank {rank} printed no `rank {rank}/{world} {missing[0]} from ...: N images in S s = X "
                    f"images/s on DEVICE` line"]
        wrong = [line for line in mine.values() if line["ntasks"] != world]
        if wrong:
            return [f"rank {rank} says it is one of {wrong[0]['ntasks']} tasks, but SLURM_NTASKS is {world}"]
        for line in mine.values():
            if line["images"] != share:
                many = " (all of them: each task must read only its share, through a DistributedSampler)" \
                    if line["images"] == len(names) and world > 1 else ""
                problems.append(f"rank {rank} of {world} read {line['images']} {line['format']} images{many}; its "
                                f"share of {len(names)} is {share}")
    if problems:
        return problems[:1]
    opened = shares.opened()
    seen: dict[str, list[int]] = {}
    for rank, files in opened.items():
        for name in set(files):
            seen.setdefault(name, []).append(rank)
    twice = sorted(name for name, ranks in seen.items() if len(ranks) > 1)
    never = sorted(set(names) - set(seen))
    if len(names) % world == 0 and twice:
        ranks = seen[twice[0]]
        problems.append(f"{len(twice)} pictures were read by more than one rank (e.g. {twice[0]} by ranks {ranks}): "
                        "each rank must read its own share (DistributedSampler with rank=SLURM_PROCID)")
    if never:
        problems.append(f"{len(never)} pictures were read by no rank (e.g. {never[0]}): together the ranks must read "
                        "the whole data set (num_replicas=SLURM_NTASKS)")
    return problems
