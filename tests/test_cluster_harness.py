"""The --cluster harness itself, through its real API against the real local Slurm (no mocks).

Every test submits under its own run tag; an autouse fixture cancels whatever is left of that tag and
then asserts that the queue holds nothing of it (as Slurm's own test suite does). A test that needs to see a job in
a state (running, in the queue) holds it there until it has seen it: the job waits for a file the test writes, or
a job of the test's own fills the nodes, so no test hopes that a poll lands inside a short window. The state
machine itself, state by state, is tested without a cluster in tests/test_slurm_states.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import localcluster, slurm, sites
from harness.cluster_run import judge
from harness.exercises import cluster_jobs
from harness.job_records import finished

ROOT = sites.ROOT


@pytest.fixture(scope="module")
def local_site(local_slurm_available) -> sites.Site:
    """The local test cluster's profile, once the cluster is up (harness/localcluster.py: skip or fail with the
    command that starts it)."""
    return localcluster.site()


def tagged_ids(tag: str) -> list[str]:
    return slurm.tagged(tag)


def assert_queue_empty(tag: str, within_s: float = 60) -> None:
    """Nothing of run `tag` left in the queue; `within_s` only bounds a hang (scancel takes effect in a second)."""
    left = localcluster.queue_left(tag, within_s)
    assert left == [], f"jobs {left} of run {tag} left in the queue"


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


def wait_for(go: Path) -> str:
    """A job body's line that holds the job until the test writes `go` (so the test sees it in that state)."""
    return f"while [ ! -e {go} ]; do sleep 0.2; done"


def run_one(site, tag, folder, body, *, name="job", options=(), time_limit="00:01:00", margin=60, pending=120):
    job = slurm.submit(script(folder, body, time_limit), name=name, tag=tag, chdir=folder, results=folder / name,
                       site=site, options=[*options, "--cpus-per-task=1"])
    lines: list[str] = []
    slurm.wait([job], time_margin_s=margin, pending_limit_s=pending, log=lines.append)
    return job, judge(job, folder / name), lines



@pytest.mark.slurm
def test_job_that_exits_1_fails_with_its_exit_code_and_error_tail(local_site, tag, tmp_path):
    body = "echo 'training starts'\nfor i in $(seq 1 40); do echo \"error line $i\" >&2; done\nexit 1"
    job, verdict, lines = run_one(local_site, tag, tmp_path, body)
    assert (verdict.state, verdict.exit_code, verdict.passed) == ("FAILED", "1:0", False)
    assert verdict.problems == ["the job ended FAILED with exit code 1:0: the program exited with an error (read the "
                                "error file from the bottom)"]
    tail = verdict.error_tail.splitlines()
    assert len(tail) == 30 and tail[0] == "error line 11" and tail[-1] == "error line 40"
    assert re.fullmatch(rf"job {job.job_id} .*FAILED 1:0 in \d+ s", lines[-1])
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["state"] == "FAILED" and summary["job_id"] == job.job_id


@pytest.mark.slurm
def test_completed_job_passes_and_its_state_changes_are_printed(local_site, tag, tmp_path):
    """The job runs until the harness has printed its R: the test then lets it end, so the R cannot be missed."""
    go = tmp_path / "go"
    job = slurm.submit(script(tmp_path, f"{wait_for(go)}\necho done"), name="job", tag=tag, chdir=tmp_path,
                       results=tmp_path / "job", site=local_site, options=["--cpus-per-task=1"])
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if line.endswith(" R"):
            go.touch()

    slurm.wait([job], time_margin_s=60, pending_limit_s=120, log=log)
    verdict = judge(job, tmp_path / "job")
    assert verdict.passed and verdict.state == "COMPLETED" and verdict.exit_code == "0:0", (lines, verdict.report())
    assert re.fullmatch(rf"job {job.job_id} (PD.* -> )?R -> COMPLETED 0:0 in \d+ s", lines[-1]), lines
    assert (tmp_path / "job" / f"output.{job.job_id}").read_text() == "done\n"


@pytest.mark.slurm
@pytest.mark.slow
def test_job_past_its_time_limit_ends_in_timeout(local_site, tag, tmp_path):
    # Slurm's smallest limit is one minute; it checks limits about every 30 s, then waits KillWait (5 s here).
    job, verdict, _ = run_one(local_site, tag, tmp_path, "sleep 600", time_limit="00:01:00", margin=90)
    assert verdict.state == "TIMEOUT" and not verdict.passed, verdict.report()
    assert job.time_limit_s == 60 and job.elapsed_s >= 60  # Slurm ends it no earlier than its limit
    assert not job.given_up  # Slurm ended it, not the harness's backstop (after limit + margin = 150 s)


@pytest.mark.slurm
def test_harness_cancels_a_job_that_outlives_its_limit_plus_margin(local_site, tag, tmp_path):
    # The harness's own backstop: with a negative margin it gives up before Slurm's limit is reached.
    job, verdict, lines = run_one(local_site, tag, tmp_path, "sleep 600", margin=-55)
    assert verdict.state == "CANCELLED" and not verdict.passed
    assert "past its time limit of 60 s" in job.given_up
    assert any("cancelled: ran" in line for line in lines)


def refusal(site, tag: str, folder: Path, **change: str) -> str:
    """What sbatch's refusal of a job of `site` with `change` (a wrong profile value) becomes: one line."""
    with pytest.raises(slurm.SlurmError) as error:
        slurm.submit(script(folder, "true"), name="job", tag=tag, chdir=folder, results=folder,
                     site=dataclasses.replace(site, **change))
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.slurm
def test_invalid_partition_is_one_line_naming_the_profile_key(local_site, tag, tmp_path):
    message = refusal(local_site, tag, tmp_path, partition="dc-gpu-typo")
    assert "Invalid partition name specified" in message and "fix `partition` (now 'dc-gpu-typo')" in message
    assert str(local_site.path) in message


@pytest.mark.slurm
def test_invalid_reservation_names_the_reservation_key(local_site, tag, tmp_path):
    message = refusal(local_site, tag, tmp_path, reservation="no-such-reservation")
    assert "fix `reservation` (now 'no-such-reservation')" in message


@pytest.mark.slurm
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
    assert verdict.problems[0] == "the job was cancelled by the harness: pending for a reason that will not clear: " \
        "DependencyNeverSatisfied", verdict.problems
    assert any("PD (DependencyNeverSatisfied)" in line for line in lines)


@pytest.mark.slurm
def test_transient_error_after_the_job_arrived_makes_no_duplicate(local_site, tag, tmp_path):
    # A real sbatch that submits, then reports a socket timeout: the harness must find the job by its tag.
    fake = tmp_path / "bin"
    fake.mkdir()
    real = shutil.which("sbatch")
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
    assert slurm.find_by_label(job.label) == [job.job_id]


def test_no_sbatch_on_path_says_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(slurm.SlurmError, match=r"^`--cluster` needs Slurm \(sbatch not found\)$"):
        slurm.require_sbatch()


def cluster_run_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "--cluster", "--site", "local", "-p", "no:cacheprovider", *extra,
            "tests/cluster"]


def cluster_run_env(out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return {**env, "COURSE_SLURM_OUT": str(out), "PYTHONUNBUFFERED": "1"}


def start_cluster_run(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(cluster_run_command(*extra), cwd=ROOT, env=cluster_run_env(out), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=_as_in_a_terminal)


def _as_in_a_terminal() -> None:
    """Ctrl-C works as in an instructor's terminal, even when these tests run as a background job (`cmd &`,
    nohup), whose children inherit SIGINT as ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


def fill_the_nodes(site, tag: str, folder: Path) -> slurm.Job:
    """A job of the test's own on every node, running until the test's teardown cancels it: the jobs of a cluster
    run started meanwhile stay in the queue (Resources) for as long as the test needs them there."""
    job = slurm.submit(script(folder, wait_for(folder / "never")), name="blocker", tag=tag, chdir=folder,
                       results=folder / "blocker", site=site,
                       options=[f"--nodes={len(localcluster.nodes())}", "--exclusive"])
    wait_for_state(job.job_id, "RUNNING")
    return job


@pytest.mark.slurm
def test_sigint_in_the_middle_of_a_cluster_run_cancels_every_job(local_site, tag, tmp_path):
    fill_the_nodes(local_site, tag, tmp_path)
    process = start_cluster_run(tmp_path)
    try:
        started, seen = read_until(process, r"cluster run (\S+) on site local", 120)
        assert started, seen
        run_tag = started[1]
        submitted, more = read_until(process, rf"submitted {FIRST_JOB} as job (\d+)", 180)
        assert submitted, seen + more
        assert tagged_ids(run_tag), "the jobs should be in the queue before the interrupt (behind the blocker)"
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    assert "cancelled jobs of run" in rest, rest
    assert_queue_empty(run_tag)


def whole_cluster_run(out: Path, *extra: str, timeout: float = 1500) -> tuple[str, dict]:
    """`pytest --cluster --site local` to its end (interrupted, as by Ctrl-C, if it outlives `timeout`): its output
    and the run's summary.json, after checking it passed and wrote one summary."""
    process = start_cluster_run(out, *extra)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=60)
    runs = list(out.glob("*/summary.json"))
    assert len(runs) == 1, output
    assert process.returncode == 0, output
    return output, json.loads(runs[0].read_text())


DAYS = sorted({exercise.day for exercise, _ in cluster_jobs().values()})
FIRST_JOB = next(iter(cluster_jobs((DAYS[0],))))  # a job of the default day (`--day 1`), whichever it is


def jobs_of_day(day: int) -> set[str]:
    """The cluster jobs the exercise registry (harness/exercises/) puts on `day`: what `--day` runs."""
    return set(cluster_jobs((day,)))


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.parametrize("day", DAYS)
def test_a_days_cluster_run_on_the_local_cluster_passes_every_job(day, local_site, tmp_path):
    """`pytest --cluster --day N` (with -n 2, as in run-tests.sh: still one submission, one process): every job the
    registry puts on that day is submitted, followed to COMPLETED 0:0 and passes its verdict; every GPU job got all
    GPUs of a node and every job the cores its [jobs.<name>] table asks for."""
    output, summary = whole_cluster_run(tmp_path, "-n", "2", "--day", str(day))
    verdicts = summary["verdicts"]
    assert set(verdicts) == jobs_of_day(day), output
    for name, (_, job) in cluster_jobs((day,)).items():
        verdict = verdicts[name]
        assert verdict["passed"], (name, verdict["problems"], output[-3000:])
        if job.gpus:
            assert verdict["figures"]["gpus"] == local_site.gpus_per_node, (name, verdict["figures"])
        assert verdict["figures"]["cores"] == local_site.job(name).cpus_per_task, (name, verdict["figures"])
        assert re.search(rf"{name} \d+ .*COMPLETED 0:0 in \d+ s", output), (name, output[-3000:])
    assert_queue_empty(summary["tag"])


# --- what the harness reads from Slurm (no cluster needed) ---------------------------------------------------------

def test_scontrol_oneliner_is_parsed_with_reason_exit_code_and_limits():
    line = ("JobId=412169 JobName=first-t1 UserId=root(0) JobState=PENDING Reason=ReqNodeNotAvail,_UnavailableNodes:jrc0001 "
            "Dependency=(null) ExitCode=0:0 RunTime=00:00:00 TimeLimit=01:00:00 Command=/a b/job.sbatch WorkDir=/x\n"
            "JobId=412170 JobName=second-t1 JobState=COMPLETED Reason=None ExitCode=0:0 RunTime=00:05:12 TimeLimit=1-00:00:00")
    jobs = slurm.parse_scontrol(line)
    assert jobs["412169"].state == "PENDING" and jobs["412169"].time_limit_s == 3600
    assert not slurm.never_clears(jobs["412169"].reason)  # it may clear: given up only when it stands long
    assert (jobs["412170"].state, jobs["412170"].elapsed_s, jobs["412170"].time_limit_s) == ("COMPLETED", 312, 86400)


def test_sacct_is_parsed_and_cancelled_by_user_is_cancelled():
    jobs = slurm.parse_sacct("77|CANCELLED by 1001|0:15|41|10\n78|TIMEOUT|0:0|612|10\n")
    assert (jobs["77"].state, jobs["77"].exit_code, jobs["77"].elapsed_s) == ("CANCELLED", "0:15", 41)
    assert jobs["78"].state in slurm.FAILURES and jobs["78"].time_limit_s == 600


def test_a_reason_that_may_clear_is_given_up_only_when_it_stands_long():
    """ReqNodeNotAvail shows up while a reservation's nodes are busy, and during maintenance: patience, then a verdict."""
    job = slurm.Job(name="job", job_id="9", label="job-t", state="PENDING",
                    reason="ReqNodeNotAvail, May be reserved for other job")
    job.reason_since = 1000.0 - 60
    assert slurm._give_up(job, time_margin_s=60, pending_limit_s=7200, now=1000.0) == ""
    job.reason_since = 1000.0 - slurm.SLOW_TO_CLEAR_S["ReqNodeNotAvail"] - 1
    assert slurm._give_up(job, 60, 7200, 1000.0) == ("pending for 601 s on a reason that did not clear: "
                                                     "ReqNodeNotAvail, May be reserved for other job")


def test_durations_and_reasons():
    assert [slurm.seconds(t) for t in ("1:30", "01:00:00", "2-03:00:00", "15", "UNLIMITED")] == [90, 3600, 183600, 900, None]
    assert slurm.never_clears("DependencyNeverSatisfied") and slurm.never_clears("PartitionDown")
    assert not slurm.never_clears("Resources") and not slurm.never_clears("Priority")


@pytest.mark.parametrize("state, words", [
    ("NODE_FAIL", "a node of the job failed while it ran"), ("BOOT_FAIL", "could not be booted"),
    ("PREEMPTED", "a job of higher priority took its nodes"), ("OUT_OF_MEMORY", "more memory than the job may"),
    ("TIMEOUT", "past its time limit"), ("DEADLINE", "before its deadline"), ("SPECIAL_EXIT", "releases it")])
def test_every_final_state_gets_a_verdict_that_says_what_happened(tmp_path, state, words):
    verdict = judge(finished("job", "7", state=state, exit_code="0:0"), tmp_path)
    assert not verdict.passed and len(verdict.problems) == 1
    assert verdict.problems[0].startswith(f"the job ended {state} with exit code 0:0: ") and words in verdict.problems[0]


# --- JURECA's strictness, proven with broken copies of the course files through the real harness -----------------

def broken_copy(tmp_path: Path, name: str, line_pattern: str) -> Path:
    """slurm/<name> with the lines matching `line_pattern` removed; fails if there was no such line."""
    original = (ROOT / "slurm" / name).read_text()
    kept = "\n".join(line for line in original.splitlines() if not re.search(line_pattern, line)) + "\n"
    assert kept != original, f"slurm/{name} has no line matching {line_pattern!r}"
    (tmp_path / name).write_text(kept)
    return tmp_path / name


GRES_LINE, SRUN_CPUS_LINE = r"^#SBATCH --gres", r"^export SRUN_CPUS_PER_TASK"


def broken_jobs(site: sites.Site) -> tuple[str, str]:
    """Two jobs of the default day to break: a GPU job whose script asks for its GPUs with an #SBATCH --gres line,
    and another whose script passes more than one core on to srun (whichever the registry holds)."""
    def script_has(name: str, pattern: str) -> bool:
        text = (ROOT / "slurm" / cluster_jobs()[name][1].sbatch).read_text()
        return re.search(pattern, text, re.MULTILINE) is not None

    jobs = cluster_jobs((DAYS[0],))
    no_gres = next(name for name, (_, job) in jobs.items() if job.gpus and script_has(name, GRES_LINE))
    no_cores = next(name for name in jobs if name != no_gres and site.job(name).cpus_per_task > 1
                    and script_has(name, SRUN_CPUS_LINE))
    return no_gres, no_cores


@pytest.mark.slurm
@pytest.mark.slow
def test_broken_copies_without_gres_or_without_srun_cpus_fail_with_their_cause(local_site, tmp_path):
    """A script that asks for no GPU, and another that does not pass its cores on to srun, submitted at once; each
    verdict fails with one line naming what to add."""
    no_gres, no_cores = broken_jobs(local_site)
    gres_script, cores_script = (cluster_jobs()[name][1].sbatch for name in (no_gres, no_cores))
    sources = {gres_script: broken_copy(tmp_path, gres_script, GRES_LINE),
               cores_script: broken_copy(tmp_path, cores_script, SRUN_CPUS_LINE)}
    verdicts, lines = localcluster.run_jobs(local_site, [no_gres, no_cores], tmp_path / "out", sources)
    gpus, cores = verdicts[no_gres], verdicts[no_cores]
    assert gpus.state == "COMPLETED" and gpus.figures["gpus"] == 0, gpus.report()
    assert gpus.problems == [f"Slurm gave the job no GPU (CUDA_VISIBLE_DEVICES is not set): on {local_site.name} a "
                             f"job gets GPUs only when it asks; add `#SBATCH --gres=gpu:{local_site.gpus_per_node}` "
                             f"to {gres_script}"], gpus.report()
    want = local_site.job(no_cores).cpus_per_task
    assert cores.state == "COMPLETED" and cores.figures["cores"] == 1, cores.report()
    assert cores.problems == [f"the program could use 1 of the {want} cores the job asked for: add `export "
                              f"SRUN_CPUS_PER_TASK=\"$SLURM_CPUS_PER_TASK\"` before srun in {cores_script} (since "
                              "Slurm 22.05 srun does not pass --cpus-per-task on)"], cores.report()


@pytest.mark.slurm
def test_unknown_account_is_one_line_naming_the_profile_key(local_site, tag, tmp_path):
    message = refusal(local_site, tag, tmp_path, account="training9999")
    assert message == ("sbatch refused the job: Invalid account or account/partition combination specified; "
                       f"fix `account` (now 'training9999') in {local_site.path}")


@pytest.mark.slurm
def test_accounting_answers_and_the_scontrol_fallback_agrees(local_site, tag, tmp_path):
    """JURECA has accounting: the harness polls with sacct there (and here); clusters without it use scontrol."""
    assert slurm.accounting_enabled() and slurm.Poller().use_sacct
    job = slurm.submit(script(tmp_path, "exit 3"), name="job", tag=tag, chdir=tmp_path, results=tmp_path,
                       site=local_site, options=["--cpus-per-task=1"])
    slurm.wait([job], poller=slurm.Poller(use_sacct=False), log=lambda line: None)
    by_scontrol = (job.state, job.exit_code)
    infos = slurm.Poller(use_sacct=True).poll([job.job_id])
    assert by_scontrol == ("FAILED", "3:0") == (infos[job.job_id].state, infos[job.job_id].exit_code)
    tres = slurm.accounting(job.job_id, ["AllocTRES"]).get("AllocTRES", "")
    assert "cpu=1" in tres.split(","), tres


# --- every state a real queue produces ------------------------------------------------------------------------------

def wait_for_state(job_id: str, state: str, timeout_s: float = 300) -> None:
    """Until Slurm shows the job in `state`, which it keeps until the test acts (the job waits for a file);
    `timeout_s` only bounds a hang, generous for a busy machine or a queue shared with other tests."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = slurm.show("job", job_id)
        if records and records[0].get("JobState") == state:
            return
        time.sleep(0.5)
    pytest.fail(f"job {job_id} never reached {state}: {slurm.show('job', job_id)}")


def requeue(job_id: str) -> None:
    """`scontrol requeue`: root, or the course user, whom Slurm lets requeue its own jobs."""
    done = slurm.requeue(job_id)
    assert done.returncode == 0, f"scontrol requeue {job_id}: {done.stderr.strip()}"


@pytest.mark.slurm
@pytest.mark.slow
def test_requeued_job_is_followed_to_its_real_end(local_site, tag, tmp_path):
    """`scontrol requeue`: the job leaves R for the queue and runs again; the harness waits for that second run.

    Each run holds until the test has seen what it needs: the first runs until the harness has seen it run and the
    test has requeued it; the second until the harness has seen it back in the queue (Slurm keeps a requeued job
    there until its BeginTime, cred_expire + 1 s later) and running again."""
    body = f'echo "run $SLURM_RESTART_COUNT"\n{wait_for(tmp_path / "go.${SLURM_RESTART_COUNT:-0}")}'
    job = slurm.submit(script(tmp_path, body, "00:03:00"), name="job", tag=tag, chdir=tmp_path,
                       results=tmp_path / "job", site=local_site, options=["--cpus-per-task=1", "--requeue",
                                                                            "--open-mode=append"])
    lines: list[str] = []
    requeued = False

    def sleep(seconds: float) -> None:  # the harness's own pause: act on what the harness has seen so far
        nonlocal requeued
        if not requeued and job.state == "RUNNING":
            requeue(job.job_id)
            requeued = True
        elif requeued and job.requeues == 1 and job.state == "RUNNING":
            (tmp_path / "go.1").touch()
        time.sleep(seconds)

    slurm.wait([job], log=lines.append, sleep=sleep, pending_limit_s=240)
    verdict = judge(job, tmp_path / "job")
    assert verdict.passed and job.requeues == 1, (lines, verdict.report())
    assert re.search(r"R -> .*PD.* -> R -> COMPLETED 0:0", lines[-1]), lines
    assert (tmp_path / "job" / f"output.{job.job_id}").read_text().splitlines() == ["run ", "run 1"]


@pytest.mark.slurm
def test_job_over_its_memory_ends_out_of_memory_with_a_verdict_that_says_so(local_site, tag, tmp_path):
    body = f"{sys.executable} -c 'x = bytearray(600 * 2**20); print(len(x))'"
    job, verdict, _ = run_one(local_site, tag, tmp_path, body, options=["--mem=200M"])
    assert verdict.state == "OUT_OF_MEMORY", verdict.report()
    assert verdict.problems[0].startswith("the job ended OUT_OF_MEMORY with exit code 0:125: it used more memory "
                                          "than the job may (--mem)"), verdict.problems


# --- orphans of a killed run ------------------------------------------------------------------------------------------

@pytest.mark.slurm
def test_jobs_of_a_killed_run_are_named_by_the_next_run_and_can_be_cancelled(local_site, tag, tmp_path):
    fill_the_nodes(local_site, tag, tmp_path)  # the orphan stays in the queue until this test has seen it there
    first = start_cluster_run(tmp_path / "first", "-k", FIRST_JOB)
    try:
        started, seen = read_until(first, r"cluster run (\S+) on site local", 120)
        assert started, seen
        submitted, more = read_until(first, rf"submitted {FIRST_JOB} as job (\d+)", 180)
        assert submitted, seen + more
        first.kill()  # SIGKILL: no handler runs, the job stays in the queue
        first.wait()
        orphan_tag, orphan_id = started[1], submitted[1]
        assert tagged_ids(orphan_tag) == [orphan_id]
        second = subprocess.run(cluster_run_command("--collect-only", "-q"), cwd=ROOT, env=cluster_run_env(tmp_path),
                                capture_output=True, text=True, timeout=120)
        assert re.search(rf"1 job\(s\) of earlier runs are still in the queue .*{orphan_id} \({FIRST_JOB}-{orphan_tag}, "
                         rf"\w+\)\. Cancel them with: scancel {orphan_id}", second.stdout + second.stderr), \
            second.stdout + second.stderr
        assert tagged_ids(orphan_tag) == [orphan_id], "naming the orphans must not cancel them"
        third = subprocess.run(cluster_run_command("--collect-only", "-q", "--cancel-orphans"), cwd=ROOT,
                               env=cluster_run_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert f"cancelled 1 job(s) that earlier runs left in the queue: {orphan_id}" in third.stdout + third.stderr
        assert_queue_empty(orphan_tag)
    finally:
        if first.poll() is None:
            first.kill()
        slurm.cancel([], tag=started[1] if started else None)
