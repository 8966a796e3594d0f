"""Part cluster-overhead: what the harness's own Slurm API adds to a batch of short jobs on the local test cluster.

For each job length S, N jobs that each `sleep S` are run three ways, and the time from the first submit to the
last verdict is compared:
  * the harness (harness/slurm.py): submit all, one poll for all ids, verdicts;
  * the cluster's own floor: `sbatch --wait` of the same N jobs started in parallel from a shell loop;
  * one at a time: `sbatch --wait` of each job after the previous one ended.
Every job carries the run tag in its comment (harness/slurm.py's run label); whatever is left of the tag is cancelled
at the end, pass or fail. Slurm is asked only through harness/slurm.py, apart from the `sbatch --wait` shell loops
that are the comparison.
"""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.report import Check, Part, Skipped
from harness import localcluster, slurm

ROOT = Path(__file__).resolve().parent.parent
TARGET_OVERHEAD_S = 2.0


def require_cluster() -> None:
    if shutil.which("sbatch") is None:
        raise Skipped("`sbatch` not found: needs Slurm (apt install slurm-wlm)")
    if not localcluster.cluster_up():
        raise Skipped(f"the local Slurm cluster is not running; {localcluster.START_HINT}")


def sleep_script(folder: Path, seconds: int) -> Path:
    script = folder / f"sleep{seconds}.sbatch"
    script.write_text(f"#!/bin/bash\n#SBATCH --time=00:{2 + seconds // 60:02d}:00\nsleep {seconds}\n")
    return script


def sbatch_wait_command(script: Path, label: str, folder: Path, options: list[str]) -> str:
    return (f"sbatch --wait --parsable --comment={label} --chdir={folder} --output=/dev/null "
            f"--error=/dev/null {' '.join(options)} {script} >/dev/null")


def shell_loop(script: Path, tag: str, jobs: int, folder: Path, parallel: bool, options: list[str]) -> float:
    """`sbatch --wait` N times from bash, all at once (`&` + `wait`) or one after the other."""
    lines = [sbatch_wait_command(script, slurm.run_label(f"{'par' if parallel else 'seq'}{i}", tag), folder, options)
             + (" &" if parallel else "") for i in range(jobs)]
    body = "set -euo pipefail\n" + "\n".join(lines) + "\nwait\n"
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", body], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"sbatch --wait loop failed: {done.stderr.strip()[-300:]}")
    return seconds


def harness_batch(script: Path, tag: str, jobs: int, folder: Path) -> tuple[float, int, list[str], list[str]]:
    """Submit and wait with harness/slurm.py; returns (seconds, poll calls, verdict states, job ids)."""
    from bench import harness_adapter

    return harness_adapter.submit_and_wait(script, [f"api{i}" for i in range(jobs)], tag, folder)


def cluster_span(ids: list[str]) -> float | None:
    """Seconds from the first SubmitTime to the last EndTime that Slurm itself recorded (1 s resolution)."""
    mine = [record for record in slurm.show("job") if record.get("JobId") in ids]
    submits = [record.get("SubmitTime", "") for record in mine]
    ends = [record.get("EndTime", "") for record in mine]
    try:
        first = min(datetime.datetime.fromisoformat(t) for t in submits)
        last = max(datetime.datetime.fromisoformat(t) for t in ends)
    except ValueError:  # no record, or "Unknown"
        return None
    return (last - first).total_seconds()


def cancel_tag(tag: str) -> int:
    """scancel every job of run `tag`; returns how many were still there."""
    return len(slurm.cancel([], tag=tag))


def others_in_queue(tag: str) -> set[str]:
    """Ids of other people's (or other tests') jobs in the queue: they compete for the same node."""
    return {entry["id"] for entry in slurm.queue(user=None) or [] if not entry["comment"].endswith(f"-{tag}")}


def node_slots() -> int:
    """CPUs of the cluster's nodes: how many one-CPU jobs run at once."""
    total = sum(int(record.get("CPUTot", "0") or 0) for record in localcluster.nodes().values())
    return total or os.cpu_count() or 1


def run(sleeps: list[int] = (5, 20), jobs: int = 8) -> Part:
    require_cluster()
    try:
        from bench import harness_adapter
        harness_adapter.check()
        options = harness_adapter.sbatch_options()
    except ImportError as error:
        raise Skipped(f"harness/slurm.py is not usable yet ({error})") from None
    tag = f"bench-{uuid.uuid4().hex[:6]}"
    slots = node_slots()
    part = Part("cluster-overhead", f"{jobs} jobs of `sleep S` on the local Slurm ({slots} CPUs: "
                f"{min(slots, jobs)} run at once), first submit -> last verdict",
                headers=["S", "way", "seconds", "beyond the cluster (s)", "polls per job"])
    others = others_in_queue(tag)  # sampled before each way of running: a sign of a shared cluster
    try:
        with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
            folder = Path(tmp)
            for seconds in sleeps:
                script = sleep_script(folder, seconds)
                waves = -(-jobs // slots)
                others |= others_in_queue(tag)
                api, polls, states, ids = harness_batch(script, tag, jobs, folder)
                span = cluster_span(ids)
                others |= others_in_queue(tag)
                parallel = shell_loop(script, tag, jobs, folder, True, options)
                others |= others_in_queue(tag)
                serial = shell_loop(script, tag, jobs, folder, False, options)
                floor = span if span is not None else parallel
                part.rows += [
                    [seconds, "harness API (harness/slurm.py)", api, api - floor, polls / jobs],
                    [seconds, "Slurm's own record of those jobs: first submit -> last end",
                     span if span is not None else "-", 0.0 if span is not None else "-", "-"],
                    [seconds, "sbatch --wait x N in parallel (shell loop)", parallel, parallel - floor, "-"],
                    [seconds, "sbatch --wait one at a time", serial, serial - floor, "-"],
                    [seconds, f"ideal: {waves} waves x S", float(waves * seconds), waves * seconds - floor, "-"],
                ]
                part.notes.append(f"S={seconds}: the harness made {polls} Slurm calls for all {jobs} jobs together "
                                  f"(each poll: one sacct, plus one squeue while accounting shows a job unfinished)")
                part.checks.append(Check(f"harness beyond the cluster's own time at S={seconds}", api - floor,
                                         TARGET_OVERHEAD_S, higher_is_better=False, unit=" s"))
                bad = [s for s in states if s != "COMPLETED"]
                if bad:
                    part.notes.append(f"S={seconds}: harness verdicts not all COMPLETED: {sorted(set(bad))}")
    finally:
        left = cancel_tag(tag)
    others |= others_in_queue(tag)
    if others:
        ids = ", ".join(sorted(others, key=lambda i: (len(i), i)))
        part.notes.append(f"{len(others)} other job(s) ({ids}) shared the cluster during the run: "
                          "the figures include waiting for them")
    part.notes.append(f"run tag {tag}; {left} job(s) of it were still queued at the end and were cancelled")
    return part
