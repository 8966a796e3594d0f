"""The local test cluster (slurm/local-cluster/start.sh): is it up, and a fixture that lends it to a test.

Tests marked `slurm` take the `local_slurm` fixture: it skips on a laptop without the cluster (with the
command that starts it) and fails in CI. Every job a test submits through it is cancelled at teardown,
pass or fail, so no test leaves work in the queue for the next one (as in Slurm's own test suite).
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.requires import require

STATE = Path(os.environ.get("COURSE_SLURM_STATE", "/tmp/course-slurm"))
PARTITION = "dc-gpu"
RESERVATION = "training2441"
START_HINT = "start it with: sudo bash slurm/local-cluster/start.sh"
FINISHED = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED", "BOOT_FAIL",
                      "PREEMPTED", "DEADLINE"})
USABLE_NODE_STATES = ("IDLE", "MIXED", "ALLOCATED")  # up and taking jobs (ALLOCATED: busy with someone's job)
# Variables through which a submitting shell could hand its own Lmod to a job; removed by `clean_env()`.
LMOD_VARIABLES = ("BASH_ENV", "MODULEPATH", "LMOD_CMD", "LMOD_DIR", "LMOD_PKG", "MODULESHOME", "LOADEDMODULES",
                  "_LMFILES_", "BASH_FUNC_module%%", "BASH_FUNC_ml%%")
_tags = itertools.count()


def _run(argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def fields(text: str) -> dict[str, str]:
    """`Key=Value` pairs of one `scontrol show ... -o` record (values up to the next space)."""
    return dict(re.findall(r"(\w+)=(\S*)", text))


def node_name() -> str | None:
    if shutil.which("scontrol") is None:
        return None
    out = _run(["scontrol", "show", "partition", PARTITION, "-o"])
    return fields(out.stdout).get("Nodes") if out.returncode == 0 else None


def node_state() -> str:
    """The node's state without its flags (IDLE for IDLE+RESERVED), or "" when unknown."""
    node = node_name()
    if not node:
        return ""
    out = _run(["scontrol", "show", "node", node, "-o"])
    return fields(out.stdout).get("State", "").split("+")[0] if out.returncode == 0 else ""


def cluster_up() -> bool:
    """The controller answers `scontrol ping` and the dc-gpu node is up and taking jobs."""
    if shutil.which("scontrol") is None:
        return False
    try:
        ping = _run(["scontrol", "ping"], timeout=10)
        return "is UP" in ping.stdout and node_state() in USABLE_NODE_STATES
    except subprocess.TimeoutExpired:
        return False


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a shell without Lmod: a job must get `module` from the cluster, not from us."""
    env = {k: v for k, v in os.environ.items() if k not in LMOD_VARIABLES}
    env.update(extra)
    return env


@dataclass
class LocalCluster:
    """Submit to the local cluster, wait for jobs, and remember every job id so they can all be cancelled."""
    tag: str = field(default_factory=lambda: f"pytest-{os.getpid()}-{next(_tags)}")
    jobs: list[str] = field(default_factory=list)

    @property
    def node(self) -> str:
        return node_name() or ""

    @property
    def node_cpus(self) -> int:
        return int(fields(_run(["scontrol", "show", "node", self.node, "-o"]).stdout).get("CPUTot", "1"))

    def sbatch(self, *args: str | Path, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run sbatch (with --parsable and this test's tag as comment); a job id in its answer is remembered."""
        argv = ["sbatch", "--parsable", f"--comment={self.tag}", *map(str, args)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd,
                              env=env if env is not None else clean_env(), check=False)
        job_id = done.stdout.strip().split(";")[0]
        if done.returncode == 0 and job_id.isdigit():
            self.jobs.append(job_id)
        return done

    def submit(self, *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """sbatch that must succeed; returns the job id."""
        done = self.sbatch(*args, cwd=cwd, env=env)
        assert done.returncode == 0, f"sbatch {' '.join(map(str, args))} refused: {done.stderr.strip()}"
        return self.jobs[-1]

    def job(self, job_id: str) -> dict[str, str]:
        """The job's record from `scontrol show job` (kept for MinJobAge after it ends)."""
        out = _run(["scontrol", "show", "job", job_id, "-o"])
        assert out.returncode == 0, f"scontrol show job {job_id}: {out.stderr.strip()}"
        return fields(out.stdout)

    def wait(self, job_id: str, timeout_s: float = 600) -> dict[str, str]:
        """Poll until the job has finished; on timeout cancel it and fail with its last state."""
        deadline, delay = time.monotonic() + timeout_s, 0.5
        while True:
            record = self.job(job_id)
            if record.get("JobState") in FINISHED:
                return record
            if time.monotonic() > deadline:
                _run(["scancel", job_id])
                pytest.fail(f"job {job_id} still {record.get('JobState')} ({record.get('Reason')}) "
                            f"after {timeout_s:.0f} s; cancelled", pytrace=False)
            time.sleep(delay)
            delay = min(delay * 1.5, 3)

    def run(self, *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout_s: float = 600) -> dict[str, str]:
        """Submit and wait: the finished job's record."""
        return self.wait(self.submit(*args, cwd=cwd, env=env), timeout_s)

    def cancel_all(self) -> None:
        """Cancel every job this object submitted, and any job carrying its tag (the backstop)."""
        tagged = _run(["squeue", "-h", "-o", "%i %k"]).stdout.split("\n")
        ids = set(self.jobs) | {line.split()[0] for line in tagged if line.strip().endswith(self.tag)}
        if ids:
            _run(["scancel", *sorted(ids)])


@pytest.fixture(scope="session")
def local_slurm_available() -> None:
    """The local cluster must be running: a skip with the start command on a laptop, a failure in CI."""
    require(shutil.which("sbatch") is not None, f"Slurm is not installed; {START_HINT}")
    require(cluster_up(), f"the local Slurm cluster is not running; {START_HINT}")


@pytest.fixture
def local_slurm(local_slurm_available: None, request: pytest.FixtureRequest) -> LocalCluster:
    """The local cluster for one test; `_cancel_test_jobs` cancels what it submitted."""
    cluster = LocalCluster()
    request.node._course_local_cluster = cluster
    return cluster


@pytest.fixture(autouse=True)
def _cancel_test_jobs(request: pytest.FixtureRequest):
    """After every test that used `local_slurm` (the `slurm`-marked ones), pass or fail: cancel its jobs."""
    yield
    cluster = getattr(request.node, "_course_local_cluster", None)
    if cluster is not None:
        cluster.cancel_all()
