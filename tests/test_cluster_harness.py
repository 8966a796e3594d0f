"""The --cluster harness itself, through its real API against the real local Slurm (no mocks).

Every test submits under its own run tag; an autouse fixture cancels whatever is left of that tag and
then asserts that the queue holds nothing of it (as Slurm's own test suite does).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import slurm, sites
from harness.cluster_run import judge
from harness.requires import require, require_command

ROOT = sites.ROOT


def slurm_up() -> bool:
    try:
        return "is UP" in subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def local_site(request) -> sites.Site:
    """The local test cluster's profile, once the cluster answers."""
    try:
        request.getfixturevalue("local_slurm_available")  # harness/localcluster.py: skip or fail with the hint
    except pytest.FixtureLookupError:
        pass
    require_command("sbatch", "install slurm-wlm and run slurm/local-cluster/start.sh")
    require(slurm_up(), "the local Slurm cluster is not running (bash slurm/local-cluster/start.sh)")
    return sites.resolve("local")


def tagged_ids(tag: str) -> list[str]:
    listing = subprocess.run(["squeue", "--noheader", "--format=%i %j"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip().endswith(f"-{tag}")]


def assert_queue_empty(tag: str, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while tagged_ids(tag) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert tagged_ids(tag) == [], f"jobs of run {tag} left in the queue"


@pytest.fixture
def tag(local_site) -> str:
    """A run tag of this test's own; nothing of it may stay in the queue."""
    value = "t" + secrets.token_hex(3)
    yield value
    slurm.cancel([], tag=value)
    assert_queue_empty(value)


def script(folder: Path, body: str, time_limit: str = "00:01:00") -> Path:
    path = folder / "job.sbatch"
    path.write_text(f"#!/bin/bash\n#SBATCH --time={time_limit}\n#SBATCH --cpus-per-task=1\n{body}\n")
    return path


def run_one(site, tag, folder, body, *, name="job", options=(), time_limit="00:01:00", margin=60, pending=120):
    job = slurm.submit(script(folder, body, time_limit), name=name, tag=tag, chdir=folder, results=folder / name,
                       site=site, options=[*options, "--cpus-per-task=1"])
    lines: list[str] = []
    slurm.wait([job], time_margin_s=margin, pending_limit_s=pending, log=lines.append)
    return job, judge(job, folder / name), lines


pytestmark = pytest.mark.slurm


def test_job_that_exits_1_fails_with_its_exit_code_and_error_tail(local_site, tag, tmp_path):
    body = "echo 'training starts'\nfor i in $(seq 1 40); do echo \"error line $i\" >&2; done\nexit 1"
    job, verdict, lines = run_one(local_site, tag, tmp_path, body)
    assert (verdict.state, verdict.exit_code, verdict.passed) == ("FAILED", "1:0", False)
    assert "the job ended FAILED with exit code 1:0" in verdict.problems
    tail = verdict.error_tail.splitlines()
    assert len(tail) == 30 and tail[0] == "error line 11" and tail[-1] == "error line 40"
    assert re.fullmatch(rf"job {job.job_id} .*FAILED 1:0 in \d+ s", lines[-1])
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["state"] == "FAILED" and summary["job_id"] == job.job_id


def test_completed_job_passes_and_its_state_changes_are_printed(local_site, tag, tmp_path):
    job, verdict, lines = run_one(local_site, tag, tmp_path, "sleep 3; echo done")
    assert verdict.passed and verdict.state == "COMPLETED" and verdict.exit_code == "0:0"
    assert re.fullmatch(rf"job {job.job_id} (PD.* -> )?R -> COMPLETED 0:0 in [3-9] s", lines[-1]), lines
    assert (tmp_path / "job" / f"output.{job.job_id}").read_text() == "done\n"


@pytest.mark.slow
def test_job_past_its_time_limit_ends_in_timeout(local_site, tag, tmp_path):
    # Slurm's smallest limit is one minute; it checks limits about every 30 s, then waits KillWait (5 s here).
    job, verdict, _ = run_one(local_site, tag, tmp_path, "sleep 600", time_limit="00:01:00", margin=90)
    assert verdict.state == "TIMEOUT" and not verdict.passed, verdict.report()
    assert job.time_limit_s == 60 and 60 <= job.elapsed_s < 150
    assert not job.given_up  # Slurm ended it, not the harness's backstop


def test_harness_cancels_a_job_that_outlives_its_limit_plus_margin(local_site, tag, tmp_path):
    # The harness's own backstop: with a negative margin it gives up before Slurm's limit is reached.
    job, verdict, lines = run_one(local_site, tag, tmp_path, "sleep 600", margin=-55)
    assert verdict.state == "CANCELLED" and not verdict.passed
    assert "past its time limit of 60 s" in job.given_up
    assert any("cancelled: ran" in line for line in lines)


def test_invalid_partition_is_one_line_naming_the_profile_key(local_site, tag, tmp_path):
    broken = dataclasses.replace(local_site, partition="dc-gpu-typo")
    with pytest.raises(slurm.SlurmError) as error:
        slurm.submit(script(tmp_path, "true"), name="job", tag=tag, chdir=tmp_path, results=tmp_path, site=broken)
    message = str(error.value)
    assert "\n" not in message
    assert "Invalid partition name specified" in message and "fix `partition` (now 'dc-gpu-typo')" in message
    assert str(local_site.path) in message


def test_invalid_reservation_names_the_reservation_key(local_site, tag, tmp_path):
    broken = dataclasses.replace(local_site, reservation="no-such-reservation")
    with pytest.raises(slurm.SlurmError, match=r"fix `reservation` \(now 'no-such-reservation'\)"):
        slurm.submit(script(tmp_path, "true"), name="job", tag=tag, chdir=tmp_path, results=tmp_path, site=broken)


def test_job_pending_on_a_dependency_that_never_clears_is_cancelled(local_site, tag, tmp_path):
    first = slurm.submit(script(tmp_path, "exit 1"), name="first", tag=tag, chdir=tmp_path,
                         results=tmp_path / "first", site=local_site)
    second = slurm.submit(script(tmp_path, "echo never"), name="second", tag=tag, chdir=tmp_path,
                          results=tmp_path / "second", site=local_site, options=[f"--dependency=afterok:{first.job_id}"])
    lines: list[str] = []
    slurm.wait([first, second], log=lines.append, pending_limit_s=120)
    verdict = judge(second, tmp_path / "second")
    assert first.state == "FAILED"
    assert verdict.state == "CANCELLED" and not verdict.passed
    assert "cancelled by the harness: pending for a reason that will not clear: DependencyNeverSatisfied" \
        in verdict.problems
    assert any("PD (DependencyNeverSatisfied)" in line for line in lines)


def test_held_job_is_cancelled_naming_the_reason(local_site, tag, tmp_path):
    job, verdict, _ = run_one(local_site, tag, tmp_path, "echo never", options=["--hold"])
    assert verdict.state == "CANCELLED" and "JobHeldUser" in job.given_up


def test_transient_error_after_the_job_arrived_makes_no_duplicate(local_site, tag, tmp_path):
    # A real sbatch that submits, then reports a socket timeout: the harness must find the job by its tag.
    fake = tmp_path / "bin"
    fake.mkdir()
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    (fake / "sbatch").write_text(f"#!/bin/bash\n{real} \"$@\" >/dev/null || exit 1\n"
                                 "echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv "
                                 "operation' >&2\nexit 1\n")
    (fake / "sbatch").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    path_before = os.environ["PATH"]
    os.environ["PATH"] = env["PATH"]  # require_sbatch looks sbatch up on PATH
    try:
        job = slurm.submit(script(tmp_path, "sleep 1"), name="job", tag=tag, chdir=tmp_path, results=tmp_path,
                           site=local_site, env=env, pause_s=0.1)
    finally:
        os.environ["PATH"] = path_before
    assert slurm.find_by_name(job.job_name) == [job.job_id]


def test_no_sbatch_on_path_says_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(slurm.SlurmError, match=r"^`--cluster` needs Slurm \(sbatch not found\)$"):
        slurm.require_sbatch()


def start_cluster_run(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "COURSE_SLURM_OUT": str(out), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pytest", "--cluster", "--site", "local", "-p", "no:cacheprovider",
                             *extra, "tests/cluster"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(process: subprocess.Popen, pattern: str, timeout_s: float) -> tuple[re.Match | None, str]:
    seen = ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        match = re.search(pattern, seen)
        if match:
            return match, seen
    return None, seen


def test_sigint_in_the_middle_of_a_cluster_run_cancels_every_job(local_site, tmp_path):
    process = start_cluster_run(tmp_path)
    try:
        started, seen = read_until(process, r"cluster run (\S+) on site local", 120)
        assert started, seen
        run_tag = started[1]
        submitted, more = read_until(process, r"submitted matrix as job (\d+)", 180)
        assert submitted, seen + more
        assert tagged_ids(run_tag), "the jobs should be in the queue before the interrupt"
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    assert "cancelled jobs of run" in rest, rest
    assert_queue_empty(run_tag)


@pytest.mark.slow
def test_cluster_run_on_the_local_cluster_passes_matrix_and_cats(local_site, tmp_path):
    # -n 2 as in run-tests.sh: --cluster must still submit once, from one process
    process = start_cluster_run(tmp_path, "-n", "2")
    try:
        output, _ = process.communicate(timeout=1200)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=60)
    runs = list(tmp_path.glob("*/summary.json"))
    assert len(runs) == 1, output
    summary = json.loads(runs[0].read_text())
    assert process.returncode == 0, output
    verdicts = summary["verdicts"]
    assert set(verdicts) == {"matrix", "cats"}
    assert verdicts["matrix"]["passed"] and verdicts["matrix"]["figures"]["check"] == "passed"
    assert verdicts["cats"]["passed"] and verdicts["cats"]["figures"]["error_rate"] <= 0.1
    assert re.search(r"matrix \d+ .*COMPLETED 0:0 in \d+ s", output) and re.search(r"cats \d+ .*COMPLETED 0:0", output)
    assert_queue_empty(summary["tag"])
