"""Where and when figures were taken: cores, CPU model, load, date and commit, so RESULTS.md can be judged later."""
from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSY_LOAD_PER_CORE = 0.25  # load before a part above this: other work shared the cores, figures are pessimistic


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def commit() -> str:
    """Short hash of HEAD, with `+changes` when tracked files differ from it."""
    git = ["git", "-c", f"safe.directory={ROOT}"]  # the bench may run as another user than the checkout's owner
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--"], cwd=ROOT).returncode != 0
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def load() -> float:
    """One-minute load average."""
    return os.getloadavg()[0]


def describe(load_before: float, load_after: float) -> str:
    """One line for RESULTS.md: date, machine, commit, and whether the machine was shared at the time."""
    cores = os.cpu_count() or 1
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    line = (f"Measured {date} on {cores} cores ({cpu_model()}), commit `{commit()}`, "
            f"load {load_before:.2f} before / {load_after:.2f} after.")
    if load_before > BUSY_LOAD_PER_CORE * cores:  # "after" includes the benchmark's own work
        line += (f" The machine was busy: a shared {cores}-core machine where other people's tests were running, "
                 "so these figures are noisy and on the slow side.")
    return line
