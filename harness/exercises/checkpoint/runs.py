"""Runs of train_ckpt.py on this machine, as a job's training step runs them: under torchrun_jsc --standalone, without
internet, the reporter on, and interrupted the way Slurm interrupts a job.

`start_run` starts one run and, while it trains, sends the whole run (torchrun and its training processes, as
`scancel --signal` does to a job step) the stop signal once the log has reached a given step, or kills it with
SIGKILL once a file appears. A second start in the same folder resumes from the checkpoint the first one left.
`SLOW_SAVE` is a launcher that makes the training's torch.save stop half-way, so that a test can kill it there.
"""
from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.exercises.ddp.runs import FLOAT64_ENV, KNOBS as DDP_KNOBS, LOG, Run, read_log
from harness.offline import Ran, program_env, run_program
from harness.report import Report

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
class Start(Run):
    """One start of train_ckpt.py: a run as exercise 5's (its Ran, workdir, seconds, leftovers, what each rank's
    DataLoader handed out), and at which line of the log it was interrupted (if it was)."""
    signalled_at: int | None = None  # lines in the log when the stop signal was sent
    killed: bool = False  # SIGKILLed by the test (SLOW_SAVE)
    reports_dir: str = ""  # where its processes reported (one folder per start)

    @property
    def workers(self) -> list[Report]:
        return [r for r in self.ran.reports if r.program == PROGRAM or PROGRAM in " ".join(r.argv)]

    passes = Run.shards  # rank -> the picture indices of each DataLoader pass of this start

    def explain(self) -> str:
        return self.ran.explain() + f"\n(signalled at log line {self.signalled_at})"


def log_lines(workdir: Path) -> int:
    return len(read_log(workdir / LOG))


def start_run(script_dir: Path, data: Path, workdir: Path, nproc: int, *, epochs: int, batch: int, workers: int = 1,
              stop_signal: signal.Signals | None = None, signal_at: int = 0, kill_on: str = "",
              launcher: Path | None = None, float64: bool = True, timeout: float = RUN_TIMEOUT_S) -> Start:
    """train_ckpt.py of `script_dir` (through `launcher`, if given) in `nproc` processes, in `workdir`, without
    internet (harness.offline.run_program: a process group, killed whole when it outlives `timeout`). With
    `stop_signal`, the run's process group gets it as soon as the log holds `signal_at` lines; with `kill_on`, it is
    SIGKILLed as soon as that file appears in `workdir`. In float64 for runs that are compared (ddp.TOLERANCE)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = program_env(KNOBS, DATA=str(data), EPOCHS=str(epochs), BATCH=str(batch), WORKERS=str(workers),
                      COURSE_REPORT_DETAIL="dataloaders", **(FLOAT64_ENV if float64 else {}))
    script = [str(launcher), str(script_dir / PROGRAM)] if launcher else [str(script_dir / PROGRAM)]
    argv = [sys.executable, "-m", "torchrun_jsc", "--standalone", f"--nproc_per_node={nproc}", *script]
    reports_dir = workdir / f".reports-{len(list(workdir.glob('.reports-*')))}"  # one folder per start
    reports_dir.mkdir()
    signalled_at, killed = None, False

    def interrupt(send) -> None:
        nonlocal signalled_at, killed
        if stop_signal is not None and signalled_at is None and log_lines(workdir) >= signal_at:
            signalled_at = log_lines(workdir)
            send(stop_signal)  # every process of the run, as Slurm signals a job step
        elif kill_on and not killed and (workdir / kill_on).exists():
            send(signal.SIGKILL)
            killed = True

    ran = run_program(argv, cwd=workdir, env=env, offline=True, report_dir=reports_dir, timeout=timeout,
                      watch=interrupt)
    return Start(ran, signalled_at, killed, str(reports_dir))
