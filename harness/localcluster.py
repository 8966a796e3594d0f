"""The local test cluster (slurm/local-cluster/start.sh): is it up, and a fixture that lends it to a test.

Tests marked `slurm` take the `local_slurm` fixture: it skips on a laptop without the cluster (with the
command that starts it) and fails in CI. Every job a test submits through it is cancelled at teardown,
pass or fail, so no test leaves work in the queue for the next one (as in Slurm's own test suite).
It talks to Slurm only through harness/slurm.py, the harness's one Slurm client, and takes the cluster's
partition, reservation and account from its site profile, slurm/sites/local.toml (harness/sites.py).
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from harness import course_venv, sites, slurm
from harness.offline import program_env
from harness.once import once_per_run
from harness.requires import require
from harness.users import course_users, current_user

PROFILE_VALUES = ("PARTITION", "RESERVATION", "ACCOUNT")  # read from the profile on first use (PEP 562)
START_HINT = "start it with: sudo bash slurm/local-cluster/start.sh"
USABLE_NODE_STATES = ("IDLE", "MIXED", "ALLOCATED")  # up and taking jobs (ALLOCATED: busy with someone's job)
# Variables through which a submitting shell could hand its own Lmod to a job; removed by `submit_env()`.
LMOD_VARIABLES = ("BASH_ENV", "MODULEPATH", "LMOD_CMD", "LMOD_DIR", "LMOD_PKG", "MODULESHOME", "LOADEDMODULES",
                  "_LMFILES_", "BASH_FUNC_module%%", "BASH_FUNC_ml%%")
_tags = itertools.count()


@functools.cache
def site() -> sites.Site:
    """The local cluster's profile (slurm/sites/local.toml): what start.sh sets up, as the harness sees it."""
    return sites.resolve("local")


def __getattr__(name: str) -> str:
    """PARTITION, RESERVATION, ACCOUNT: the profile's values, read when first asked for (a broken profile then
    fails the test that needs it with its one-line error, not every pytest session at start-up)."""
    if name in PROFILE_VALUES:
        return getattr(site(), name.lower())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def nodes() -> dict[str, dict[str, str]]:
    """The nodes of the course partition, name -> `scontrol show node` record ({} without Slurm)."""
    partition = slurm.show("partition", site().partition)
    if not partition:
        return {}
    return {name: (slurm.show("node", name) or [{}])[0] for name in slurm.hostnames(partition[0].get("Nodes", ""))}


def node_state(record: dict[str, str]) -> str:
    """A node's state without its flags (IDLE for IDLE+RESERVED)."""
    return record.get("State", "").split("+")[0]


def cluster_up() -> bool:
    """The controller answers (`slurm.ping`) and every node of the course partition takes jobs."""
    if not slurm.ping():
        return False
    found = nodes()
    return bool(found) and all(node_state(r) in USABLE_NODE_STATES for r in found.values())


def submit_env(**extra: str) -> dict[str, str]:
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
    def nodes(self) -> list[str]:
        return sorted(nodes())

    def sbatch(self, *args: str | Path, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run sbatch (with --parsable and this test's run label as comment, as the harness labels its jobs); a
        job id in its answer is remembered."""
        done = slurm.run_sbatch([f"--comment={slurm.run_label('test', self.tag)}", *map(str, args)], cwd=cwd,
                                env=env if env is not None else submit_env())
        job_id = slurm.job_id_of(done)
        if job_id:
            self.jobs.append(job_id)
        return done

    def submit(self, *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """sbatch that must succeed; returns the job id."""
        done = self.sbatch(*args, cwd=cwd, env=env)
        assert done.returncode == 0, f"sbatch {' '.join(map(str, args))} refused: {done.stderr.strip()}"
        return self.jobs[-1]

    def job(self, job_id: str) -> dict[str, str]:
        """The job's record from `scontrol show job` (kept for MinJobAge after it ends)."""
        records = slurm.show("job", job_id)
        assert records, f"scontrol show job {job_id}: Slurm does not know the job"
        return records[0]

    def wait(self, job_id: str, timeout_s: float = 600) -> dict[str, str]:
        """Wait with the harness's own poller until the job has finished; a job that cannot finish in time is
        cancelled and fails the test with its last state."""
        job = slurm.Job(name="test", job_id=job_id)
        slurm.wait([job], time_margin_s=int(timeout_s), pending_limit_s=int(timeout_s), log=lambda line: None)
        if job.given_up or job.lost:
            pytest.fail(f"job {job_id} did not finish: {job.given_up} ({' -> '.join(job.history)})", pytrace=False)
        return self.job(job_id)

    def run(self, *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout_s: float = 600) -> dict[str, str]:
        """Submit and wait: the finished job's record."""
        return self.wait(self.submit(*args, cwd=cwd, env=env), timeout_s)

    def cancel_all(self) -> None:
        """Cancel every job this object submitted, and any job carrying its tag (the backstop)."""
        slurm.cancel([slurm.Job(name="test", job_id=job_id) for job_id in self.jobs], tag=self.tag)


@pytest.fixture(scope="session")
def local_slurm_available() -> None:
    """The local cluster must be running, and we must be one of its users (JURECA takes no jobs from root)."""
    require(shutil.which("sbatch") is not None, f"Slurm is not installed; {START_HINT}")
    require(cluster_up(), f"the local Slurm cluster is not running; {START_HINT}")
    require(current_user() in course_users(),
            f"the local cluster takes jobs from its course users ({', '.join(course_users())}) only, as JURECA-DC "
            f"takes none from root: run the Slurm tests as one of them (bash run-tests.sh does)")


@pytest.fixture(scope="session")
def local_course_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course venv for the batch jobs of the tests, made once per test run the way the local profile says (on
    top of the test cluster's PyTorch module; harness.course_venv)."""
    with once_per_run(tmp_path_factory, "local-course-venv") as root:
        try:
            course_venv.make(root / "venv-template", site().venv_setup, program_env(), root / "venv-setup.log")
        except RuntimeError as error:
            pytest.fail(str(error), pytrace=False)
    return root / "venv-template"


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


def queue_left(tag: str, within_s: float = 60) -> list[str]:
    """The jobs of run `tag` still in the queue after at most `within_s` (scancel takes effect in a second; the wait
    only bounds a hang)."""
    deadline = time.monotonic() + within_s
    while slurm.tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.5)
    return slurm.tagged(tag)


@contextlib.contextmanager
def finished_run(site: sites.Site, names: list[str], out: Path, sources: dict | None = None,
                 log: Callable[[str], None] = print) -> Iterator:
    """A whole `--cluster` run of the jobs `names` on the local cluster, in this process: prepare, submit, wait,
    judge; then nothing of it may be left in the queue. `sources`: files standing in for the course's (broken
    copies). Yields the ClusterRun, judged (`.verdicts`), for a test that judges its jobs once more."""
    from harness.cluster_run import ClusterRun  # the local cluster's helpers load without the cluster run

    run = ClusterRun(site, names, out_dir=out, log=log, sources=sources)
    try:
        run.start()
        assert not run.error, run.error
        run.wait()
        yield run
    finally:
        run.cancel()
        left = queue_left(run.tag)
        assert not left, f"jobs {left} of run {run.tag} left in the queue"


def run_jobs(site: sites.Site, names: list[str], out: Path, sources: dict | None = None) -> tuple[dict, list[str]]:
    """`finished_run`'s verdicts by job and the run's log lines."""
    lines: list[str] = []
    with finished_run(site, names, out, sources, lines.append) as run:
        return run.verdicts, lines
