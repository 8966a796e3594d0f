"""`pytest --cluster`: the pytest side of a cluster run (harness/cluster_run.py does the work).

After collection and before the first test, every selected cluster job is submitted at once; the
`cluster_verdicts` fixture waits for all of them together; each test then asserts on its own job.
Whatever ends the session (Ctrl-C, SIGTERM, a crash) cancels every job of the run.
"""
from __future__ import annotations

import atexit
import signal
import sys

import pytest

from harness.cluster_run import JOBS, ClusterRun, Verdict
from harness.sites import SiteError, resolve

_RUN_KEY = pytest.StashKey[ClusterRun]()
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
    """Submit the jobs of all selected cluster tests, all at once, before the first test runs."""
    config = session.config
    run = config.stash.get(_RUN_KEY, None)
    if run is None or session.config.option.collectonly:
        return
    run.names = sorted({job for item in session.items if (job := job_of(item)) in JOBS})
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
        pytest.fail(f"no cluster job `{name}` (known: {', '.join(JOBS)})", pytrace=False)
    return cluster_verdicts[name]
