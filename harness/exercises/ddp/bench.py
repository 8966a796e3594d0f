"""Part ddp-scaling: pictures per second of the course's train_ddp.py (exercise 5) as the processes grow, on the CPU.

The stand-in pictures (harness.minipets) are packed into pets.h5 by solutions/pack.py in a temporary folder, and
solutions/train_ddp.py trains on them with gloo, BATCH pictures per process and step (the global batch grows with
the processes, as in the lesson), no DataLoader workers and one math thread per process, so that a process uses one
core:
  * 1 process, and 2 processes on one node: torchrun_jsc --standalone on this machine;
  * 2 nodes x 1 process, and 2 nodes x 4 processes (the batch script as written): slurm/ddp.sbatch on the local
    test cluster (needs it running, and a course user to submit).
The rate is that of the steady state, from rank 0's log: the pictures of every epoch but the first over their
seconds (the first holds the start of the DataLoaders). Efficiency = rate / (processes x the rate of one process).
The local cluster's two "nodes" are slurmds on this one machine: they share its cores (two here) and talk over
loopback, so the 2-node rows measure what DDP's launch and gloo cost, not a network between machines.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench.report import Check, Part, Skipped
from harness.exercises import ROOT

SOLUTIONS = ROOT / "solutions"
TARGET_EFFICIENCY = 0.8  # of 2 processes on one node, which has the 2 cores it needs


def steady_rate(rows: list[tuple]) -> tuple[int, float]:
    """Pictures and seconds of every epoch after the first, from (epoch, pictures, seconds, loss) rows."""
    first_end = max(row[2] for row in rows if row[0] == rows[0][0])
    later = [row for row in rows if row[0] != rows[0][0]]
    if not later:
        raise RuntimeError("the log holds one epoch only: run at least two")
    return sum(row[1] for row in later), rows[-1][2] - first_end


def cluster_rows(data: Path, folder: Path, epochs: int, batch: int) -> tuple[list[tuple[str, int, list]], str]:
    """(label, processes, log rows) of slurm/ddp.sbatch on the local cluster, or ([], why not)."""
    from harness import course_venv
    from harness.exercises.ddp import runs
    from harness.localcluster import LocalCluster, cluster_up, site
    from harness.offline import program_env
    from harness.users import course_users, current_user

    if shutil.which("sbatch") is None or not cluster_up():
        return [], "the local cluster is not running (sudo bash slurm/local-cluster/start.sh)"
    if current_user() not in course_users():
        return [], f"the local cluster takes jobs from {', '.join(course_users())} only (run the bench as that user)"
    try:
        course_venv.make(folder / "venv-template", site().venv_setup, program_env(), folder / "venv-setup.log")
    except RuntimeError as error:
        return [], str(error)
    cluster, found = LocalCluster(), []
    try:
        for label, gpus in (("2 nodes x 1 process (ddp.sbatch, --gres=gpu:1)", 1),
                            ("2 nodes x 4 processes (ddp.sbatch as written)", 4)):
            job = folder / f"job-{gpus}"
            job.mkdir()
            for name in ("datasets.py", "train.py", "train_ddp.py"):
                shutil.copy2(SOLUTIONS / name, job / name)
            shutil.copy2(ROOT / "slurm" / "ddp.sbatch", job / "ddp.sbatch")
            env = program_env(runs.KNOBS, COURSE_VENV=str(folder / "venv-template"), DATA=str(data),
                              EPOCHS=str(epochs), BATCH=str(batch), WORKERS="0")
            record = cluster.run("--cpus-per-task=2", f"--gres=gpu:{gpus}", "--time=00:10:00", "ddp.sbatch",
                                 cwd=job, env=env, timeout_s=900)
            if record.get("JobState") != "COMPLETED":
                return found, f"job {record.get('JobId')} ended {record.get('JobState')} (see {job})"
            found.append((label, 2 * gpus, runs.read_log(job / runs.LOG)))
    finally:
        cluster.cancel_all()
    return found, ""


def run(per_breed: int = 32, epochs: int = 3, batch: int = 16, cluster: bool = True) -> Part:
    try:
        from harness import minipets
        from harness.exercises.ddp import runs as ddp
    except ImportError as error:
        raise Skipped(f"cannot import {error.name} (install requirements.txt into .venv)") from None
    if shutil.which("sbatch") is None:
        cluster = False
    part = Part("ddp-scaling", f"solutions/train_ddp.py on {37 * per_breed} stand-in pictures, gloo on the CPU, "
                f"{batch} pictures per process and step, {epochs} epochs",
                headers=["run", "processes", "global batch", "pictures", "seconds", "pictures/s", "efficiency"])
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        minipets.write_images(folder / "images", per_breed=per_breed)
        packed = ddp.pack(SOLUTIONS, folder / "images", folder / "packed", folder / "pack")
        if packed.problems():
            raise Skipped(f"solutions/pack.py failed: {packed.problems()[0]}")
        runs: list[tuple[str, int, list]] = []
        for nproc in (1, 2):
            done = ddp.run_ddp(SOLUTIONS, packed.h5, folder / f"standalone-{nproc}", nproc, batch=batch,
                               epochs=epochs, workers=0, timeout=900)
            if done.ran.returncode != 0:
                raise RuntimeError(f"{nproc} process(es): {ddp.failure(done.ran, 'train_ddp.py')}")
            where = "one process" if nproc == 1 else "2 processes on one node (torchrun_jsc --standalone)"
            runs.append((where, nproc, done.log()))
        why = "--no-cluster" if not cluster else ""
        if cluster:
            found, why = cluster_rows(packed.h5, folder, epochs, batch)
            runs += found
    single = None
    for label, nproc, rows in runs:
        pictures, seconds = steady_rate(rows)
        rate = pictures / seconds
        single = single or rate
        efficiency = rate / (nproc * single)
        part.rows.append([label, nproc, batch * nproc, pictures, seconds, rate, f"{efficiency:.0%}"])
        if nproc == 2 and "one node" in label:
            part.checks.append(Check("2 processes on one node: efficiency", efficiency, TARGET_EFFICIENCY))
    if why:
        part.notes.append(f"no rows of the local cluster: {why}")
    part.notes.append("Rates of the steady state (every epoch after the first); no DataLoader workers and "
                      "OMP_NUM_THREADS=1, so one process uses one core. The local cluster's two nodes are slurmds on "
                      f"this machine and share its {os.cpu_count()} cores: 4 processes per node put 8 on them.")
    return part
