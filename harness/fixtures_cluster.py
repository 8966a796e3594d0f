"""`pytest --cluster`: the pytest side of a cluster run (harness/cluster_run.py does the work).

After collection and before the first test, every selected cluster job is submitted at once; the
`cluster_verdicts` fixture waits for all of them together; each test then asserts on its own job.
Whatever ends the session (Ctrl-C, SIGTERM, SIGHUP, a crash) cancels every job of the run. What a SIGKILL or a
lost login leaves behind cannot be cancelled by that run: the next run names those jobs at its start and says how
to cancel them (or cancels them itself with --cancel-orphans).
"""
from __future__ import annotations

import atexit
import signal
import sys

import pytest

from harness import slurm
from harness.cluster_run import ClusterRun, Verdict
from harness.exercises import cluster_jobs
from harness.sites import SiteError, resolve

_RUN_KEY = pytest.StashKey[ClusterRun]()
_DAYS_KEY = pytest.StashKey[tuple]()
_SIGNALS_KEY = pytest.StashKey[dict]()


def _raise_interrupt(signum, frame):  # SIGTERM ends the session like Ctrl-C, so the cleanup runs
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--cluster") or hasattr(config, "workerinput"):
        return
    # The jobs run in parallel on the cluster; pytest workers would each submit them again.
    if getattr(config.option, "numprocesses", None):
        config.option.numprocesses, config.option.dist, config.option.tx = 0, "no", []
    try:
        config.stash[_RUN_KEY] = ClusterRun(  # resolved now: a bad --site is a usage error before anything runs
            resolve(config.getoption("--site")), [], target=config.getoption("--target"), log=_logger(config))
    except SiteError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[_DAYS_KEY] = days_of(config.getoption("--day"))


def days_of(option: str) -> tuple[int, ...]:
    """`--day 1`, `2`, `1,2` or `all` as the days whose jobs run."""
    known = sorted({exercise.day for exercise, _ in cluster_jobs().values()})
    if option.strip().lower() == "all":
        return tuple(known)
    try:
        days = tuple(sorted({int(part) for part in option.split(",") if part.strip()}))
    except ValueError:
        raise pytest.UsageError(f"--day {option}: give day numbers such as 1, 2 or 1,2, or all") from None
    unknown = [d for d in days if d not in known]
    if unknown or not days:
        raise pytest.UsageError(f"--day {option}: the course's cluster jobs are on day(s) "
                                f"{', '.join(map(str, known))}")
    return days


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --cluster, only the jobs of the chosen days run."""
    days = config.stash.get(_DAYS_KEY, None)
    if days is None:
        return
    chosen = cluster_jobs(days)
    drop = [item for item in items if job_of(item) is not None and job_of(item) not in chosen]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item not in drop]


def report_orphans(run: ClusterRun, cancel: bool) -> None:
    """Name the jobs of earlier runs that are still queued; cancel them when asked to."""
    try:
        found = slurm.orphans(list(cluster_jobs()), tag=run.tag)
    except OSError:
        return
    if not found:
        return
    listing = ", ".join(f"{o.job_id} ({o.label}, {o.state})" for o in found)
    ids = " ".join(o.job_id for o in found)
    if cancel:
        slurm.scancel(o.job_id for o in found)
        run.log(f"cancelled {len(found)} job(s) that earlier runs left in the queue: {listing}")
    else:
        run.log(f"{len(found)} job(s) of earlier runs are still in the queue and cost compute time: {listing}. "
                f"Cancel them with: scancel {ids}   (or run with --cancel-orphans)")

def _logger(config: pytest.Config):
    """Lines go straight to the terminal, also while pytest captures a fixture's output."""
    def log(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:
            print(f"[cluster] {line}", file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(f"[cluster] {line}", flush=True)
    return log


def job_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("cluster")
    return marker.kwargs.get("job") if marker is not None else None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Name (or cancel) what earlier runs left in the queue; then submit the jobs of all selected cluster tests,
    all at once, before the first test runs (not with --collect-only)."""
    config = session.config
    run = config.stash.get(_RUN_KEY, None)
    if run is None:
        return
    report_orphans(run, config.getoption("--cancel-orphans"))
    if session.config.option.collectonly:
        return
    run.names = sorted({job for item in session.items if (job := job_of(item)) in cluster_jobs()})
    if not run.names:
        return
    config.stash[_SIGNALS_KEY] = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt),
                                  signal.SIGHUP: signal.signal(signal.SIGHUP, _raise_interrupt)}
    atexit.register(run.cancel)
    run.start()
    if run.error:
        run.log(f"the run could not start: {run.error}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Pass, fail or interrupt: nothing of this run stays in the queue."""
    run = session.config.stash.get(_RUN_KEY, None)
    if run is not None and run.names:  # also when interrupted mid-submission: the run tag finds those jobs
        run.cancel()
    for signum, handler in session.config.stash.get(_SIGNALS_KEY, {}).items():
        signal.signal(signum, handler)


@pytest.fixture(scope="session")
def cluster_run(request: pytest.FixtureRequest) -> ClusterRun:
    run = request.config.stash.get(_RUN_KEY, None)
    if run is None:
        pytest.fail("cluster tests run only with `pytest --cluster`", pytrace=False)
    return run


@pytest.fixture(scope="session")
def cluster_verdicts(cluster_run: ClusterRun) -> dict[str, Verdict]:
    """Every job's verdict, after waiting for all of them together."""
    verdicts = cluster_run.wait()
    cluster_run.log(f"summary: {cluster_run.folder / 'summary.md'}")
    return verdicts


@pytest.fixture
def cluster_verdict(request: pytest.FixtureRequest, cluster_verdicts: dict[str, Verdict]) -> Verdict:
    """The verdict of the job named by this test's `@pytest.mark.cluster(job=...)`."""
    name = job_of(request.node)
    if name not in cluster_verdicts:
        pytest.fail(f"no cluster job `{name}` (known: {', '.join(cluster_jobs())})", pytrace=False)
    return cluster_verdicts[name]
