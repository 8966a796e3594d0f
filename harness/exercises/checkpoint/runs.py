"""Runs of train_ckpt.py on this machine, as a job's training step runs them: under torchrun_jsc --standalone, without
internet, the reporter on, and interrupted the way Slurm interrupts a job.

`start_run` starts one run and, while it trains, sends the whole run (torchrun and its training processes, as
`scancel --signal` does to a job step) the stop signal once the log has reached a given step, or kills it with
SIGKILL once a file appears. A second start in the same folder resumes from the checkpoint the first one left.
`SLOW_SAVE` is a launcher that makes the training's torch.save stop half-way, so that a test can kill it there.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.exercises.ddp.runs import FLOAT64_ENV, KNOBS as DDP_KNOBS, LOG, read_log
from harness.offline import Ran, mode, offline_command, offline_env, program_env
from harness.report import Report, read_reports

PROGRAM, CHECKPOINT = "train_ckpt.py", "checkpoint.pt"
KNOBS = (*DDP_KNOBS, "CHECKPOINT")  # train_ckpt.py's own environment variables: a run gets only the ones set here
RUN_TIMEOUT_S = 300
SAVING = "saving-half-way"  # the file SLOW_SAVE writes when it has written half of a checkpoint
SLOW_SAVE = '''"""train_ckpt.py whose torch.save writes half the file, says so in ./{saving}, and waits for its kill."""
import io, os, runpy, sys, time
import torch

script = os.path.abspath(sys.argv[1])
sys.argv, real_save = sys.argv[1:], torch.save
sys.path.insert(0, os.path.dirname(script))

def save_half_and_wait(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    with open(f, "wb") as out:
        out.write(data[:len(data) // 2])
        out.flush()
        os.fsync(out.fileno())
        open("{saving}", "w").close()
        time.sleep(600)
        out.write(data[len(data) // 2:])

torch.save = save_half_and_wait
runpy.run_path(script, run_name="__main__")
'''.format(saving=SAVING)


@dataclass
class Start:
    """One start of train_ckpt.py: how it ended, and at which line of the log it was interrupted (if it was)."""
    ran: Ran
    seconds: float
    signalled_at: int | None = None  # lines in the log when the stop signal was sent
    killed: bool = False  # SIGKILLed by the test (SLOW_SAVE)
    leftover: bool = False  # processes of the run outlived torchrun (they were killed)
    reports_dir: str = ""  # where its processes reported (one folder per start)

    @property
    def workdir(self) -> Path:
        return self.ran.workdir  # type: ignore[return-value]

    @property
    def workers(self) -> list[Report]:
        return [r for r in self.ran.reports if r.program == PROGRAM or PROGRAM in " ".join(r.argv)]

    def passes(self) -> dict[int, list[list[int]]]:
        """Rank -> the picture indices of each DataLoader pass of this start (exercise 5's probe, with the `dataloaders` detail)."""
        found: dict[int, list[list[int]]] = {}
        for report in self.workers:
            if "rank" in report.rank:
                found.setdefault(int(report.rank["rank"]), []).extend(report.probed.get("loader_passes", []))
        return found

    def explain(self) -> str:
        return self.ran.explain() + f"\n(it took {self.seconds:.1f} s, signalled at log line {self.signalled_at})"


def log_lines(workdir: Path) -> int:
    return len(read_log(workdir / LOG))


def start_run(script_dir: Path, data: Path, workdir: Path, nproc: int, *, epochs: int, batch: int, workers: int = 1,
              stop_signal: signal.Signals | None = None, signal_at: int = 0, kill_on: str = "",
              launcher: Path | None = None, float64: bool = True, timeout: float = RUN_TIMEOUT_S) -> Start:
    """train_ckpt.py of `script_dir` (through `launcher`, if given) in `nproc` processes, in `workdir`. With
    `stop_signal`, the run's process group gets it as soon as the log holds `signal_at` lines; with `kill_on`, it is
    SIGKILLed as soon as that file appears in `workdir`. In float64 for runs that are compared (ddp.TOLERANCE)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = program_env(KNOBS, DATA=str(data), EPOCHS=str(epochs), BATCH=str(batch), WORKERS=str(workers),
                      COURSE_REPORT_DETAIL="dataloaders", **(FLOAT64_ENV if float64 else {}))
    script = [str(launcher), str(script_dir / PROGRAM)] if launcher else [str(script_dir / PROGRAM)]
    argv = [sys.executable, "-m", "torchrun_jsc", "--standalone", f"--nproc_per_node={nproc}", *script]
    how = mode()
    command = offline_command(argv) if how == "netns" else argv
    started = time.monotonic()
    n = len(list(workdir.glob("stdout.*")))  # the how-manieth start in this folder
    out, err, reports_dir = workdir / f"stdout.{n}", workdir / f"stderr.{n}", workdir / f".reports-{n}"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(command, cwd=workdir, env=offline_env(env, reports_dir, how),
                                   stdout=stdout, stderr=stderr, start_new_session=True)  # files: no pipe fills up
    signalled_at, killed, hung = None, False, False
    while process.poll() is None:
        if time.monotonic() - started > timeout:
            os.killpg(process.pid, signal.SIGKILL)
            hung = True
        elif stop_signal is not None and signalled_at is None and log_lines(workdir) >= signal_at:
            signalled_at = log_lines(workdir)
            os.killpg(process.pid, stop_signal)  # every process of the run, as Slurm signals a job step
        elif kill_on and (workdir / kill_on).exists():
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    seconds = time.monotonic() - started
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything left of the run
        leftover = not killed
    except ProcessLookupError:
        leftover = False
    reports = read_reports(reports_dir) if reports_dir.is_dir() else []
    stderr = err.read_text(errors="replace")
    stderr += f"\n[harness] killed after {timeout:.0f} s: the run hung" if hung else ""
    return Start(Ran(argv, process.returncode, out.read_text(errors="replace"), stderr, workdir, reports), seconds,
                 signalled_at, killed, leftover, str(reports_dir))
