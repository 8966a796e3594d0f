"""Run a course program as on a compute node without internet, and read what it reported about itself.

Two ways to take the network away, both tested:
* `netns`: `unshare -n` gives the program a fresh network namespace holding only a loopback device (brought up
  first: Jupyter kernels, TensorBoard and friends talk to 127.0.0.1). The real thing; it needs root.
* `guard`: harness/jobsite/sitecustomize.py refuses every lookup and connection that leaves the machine, inside
  every Python process of the program, and the proxy variables point other tools at a dead port. No root needed:
  this is how a student's laptop checks the exercises.
`mode()` picks `netns` for root and `guard` otherwise; `COURSE_OFFLINE_MODE=guard|netns` forces one.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.processes import family
from harness.report import Report, read_reports, report_env
from harness.requires import require, require_command

MODES = ("netns", "guard")
_INSIDE = 'ip link set lo up && exec "$@"'


def mode() -> str:
    """How this process takes the network away from its children."""
    forced = os.environ.get("COURSE_OFFLINE_MODE", "")
    if forced:
        if forced not in MODES:
            raise ValueError(f"COURSE_OFFLINE_MODE={forced!r}: use one of {', '.join(MODES)}")
        return forced
    return "netns" if os.geteuid() == 0 else "guard"


def offline_command(cmd: Sequence[str]) -> list[str]:
    """`cmd` wrapped so that it starts in a new network namespace with loopback up (needs root)."""
    return ["unshare", "--net", "--", "sh", "-c", _INSIDE, "offline", *map(str, cmd)]


def offline_env(base: Mapping[str, str] | None = None, report_dir: Path | None = None,
                how: str | None = None) -> dict[str, str]:
    """The environment of a program run by `run_program(..., offline=True)` in the mode `how`."""
    how = how or mode()
    return report_env(report_dir, offline=how == "guard", base=dict(base if base is not None else os.environ))


# The harness's own variables and those of a Slurm job or torchrun around us: a program the harness starts gets
# them only when the harness sets them itself (a test may run inside a job, or inside another program's reporter).
HARNESS_VARIABLES = ("COURSE_REPORT_DIR", "COURSE_OFFLINE", "COURSE_REPORT_DETAIL", "COURSE_CUDA_STANDIN",
                     "CUDA_VISIBLE_DEVICES", "PYTHONPATH", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR",
                     "MASTER_PORT")


def program_env(knobs: Sequence[str] = (), **extra: str) -> dict[str, str]:
    """This environment for a course program run on this machine: without Slurm's, torchrun's and the harness's
    variables and the program's own `knobs` (the exercise names them), plus `extra`; unbuffered, quiet, one math
    thread per process unless OMP_NUM_THREADS is set (two cores are shared by everything here; a numeric check may
    be run with another thread count, another order of summation)."""
    drop = set(HARNESS_VARIABLES) | set(knobs)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "TORCHELASTIC")) and k not in drop}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore", **extra)
    return env


@dataclass
class Ran:
    """A finished program: exit code, output, the reports its Python processes left, the seconds it took, and
    whether processes of it outlived it (they were killed)."""
    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str
    workdir: Path | None = None
    reports: list[Report] = field(default_factory=list)
    seconds: float = 0.0
    leftover: bool = False

    def save(self, path: Path) -> None:
        """As JSON (the reports stay in their folder), for the other xdist workers."""
        path.write_text(json.dumps({"cmd": self.cmd, "returncode": self.returncode, "stdout": self.stdout,
                                    "stderr": self.stderr, "workdir": str(self.workdir) if self.workdir else None,
                                    "seconds": self.seconds, "leftover": self.leftover}))

    @classmethod
    def load(cls, path: Path) -> "Ran":
        data = json.loads(path.read_text())
        workdir = Path(data["workdir"]) if data["workdir"] else None
        reports = read_reports(workdir / ".reports") if workdir and (workdir / ".reports").is_dir() else []
        return cls(data["cmd"], data["returncode"], data["stdout"], data["stderr"], workdir, reports,
                   data.get("seconds", 0.0), data.get("leftover", False))

    def explain(self, last: int = 3000) -> str:
        """The end of the output, for assertion messages."""
        return (f"`{' '.join(self.cmd)}` exit code {self.returncode}\n--- stdout (end) ---\n{self.stdout[-last:]}\n"
                f"--- stderr (end) ---\n{self.stderr[-last:]}\n(it took {self.seconds:.1f} s)")


POLL_S = 0.05  # how often run_program's `watch` looks at a running program


def run_program(cmd: Sequence[str | Path], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                offline: bool = False, how: str | None = None, report_dir: Path | None = None,
                timeout: float | None = None, watch: Callable[[Callable[[int], None]], None] | None = None) -> Ran:
    """Run `cmd` with the reporter switched on (reports land in `report_dir`, default `cwd/.reports`), without
    network when `offline` (mode `how`, default `mode()`: the test skips, or fails in CI, where it is impossible).
    It runs as a process group of its own: when it outlives `timeout` it is killed whole (the group and every
    descendant: torchrun's workers too) and the run counts as failed. `watch`, if given, is called every POLL_S
    seconds while it runs, with a function that sends the whole group a signal (as Slurm signals a job step: a
    test that interrupts a training).
    Anything of it still alive after it ended that the harness had not killed itself is killed (`Ran.leftover`)."""
    argv = [str(c) for c in cmd]
    report_dir = report_dir or Path(cwd or ".") / ".reports"
    if offline:
        how = how or mode()
        if how == "netns":
            require(os.geteuid() == 0, "running a command without network in a network namespace (unshare -n) "
                                       "needs root; as a normal user the checks use COURSE_OFFLINE_MODE=guard")
            require_command("unshare", "install util-linux")
            require_command("ip", "install iproute2")
            argv = offline_command(argv)
        full_env = offline_env(env, report_dir, how)
    else:
        full_env = report_env(report_dir, base=dict(env if env is not None else os.environ))
    if cwd is not None:
        Path(cwd).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    killed = False  # the harness killed the group itself (its timeout, or `watch`): what is left then is not a leftover

    def send(sig: int) -> None:
        """`sig` to the process group (a launcher passes it on, as torchrun does); SIGKILL, which leaves the launcher
        no chance to, to every descendant as well (torchrun starts its workers in sessions of their own: alive, they
        would keep training and hold the output pipes open)."""
        nonlocal killed
        for pid in family(process.pid) if sig == signal.SIGKILL else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(ProcessLookupError):  # the run has just ended: nothing left to signal
            os.killpg(process.pid, sig)
        killed = killed or sig == signal.SIGKILL

    while True:
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        wait = left if watch is None else POLL_S if left is None else min(POLL_S, left)
        try:  # communicate() keeps what it read when it times out: the pipes never fill up
            stdout, stderr = process.communicate(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            if timeout is not None and time.monotonic() - started >= timeout:
                send(signal.SIGKILL)
                stdout, stderr = process.communicate()
                stderr += f"\n[harness] killed after {timeout:.0f} s: the run hung"
                break
            if watch is not None:
                watch(send)
    seconds = time.monotonic() - started
    try:
        os.killpg(process.pid, 0)  # anything left of the run: a worker that its launcher did not take down
        os.killpg(process.pid, signal.SIGKILL)
        leftover = not killed
    except ProcessLookupError:
        leftover = False
    return Ran([str(c) for c in cmd], process.returncode, stdout, stderr, Path(cwd) if cwd else None,
               read_reports(report_dir) if Path(report_dir).is_dir() else [], seconds, leftover)


def run_offline(cmd: Sequence[str | Path], *, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
                timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `cmd` without network (either mode) and capture its output as text: for tools such as the book build."""
    how = mode()
    argv = [str(c) for c in cmd]
    if how == "netns":
        require(os.geteuid() == 0 and shutil.which("unshare") is not None,
                "running a command without network (unshare -n) needs root and util-linux")
        argv = offline_command(argv)
    return subprocess.run(argv, env=offline_env(env, None, how), cwd=cwd, timeout=timeout, check=check,
                          capture_output=True, text=True)
