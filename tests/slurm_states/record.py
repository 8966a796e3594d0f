"""Record what Slurm's own commands answer in every job state, for tests/test_slurm_states.py (no cluster needed).

Run by hand, as root, on the local cluster (slurm/local-cluster/start.sh), under the cluster lock:

    flock /tmp/course-cluster.lock .venv/bin/python tests/slurm_states/record.py

Jobs are submitted as the course user (root gets none, as on JURECA-DC); root only drains and downs a node for
ReqNodeNotAvail and NODE_FAIL, and puts it back at the end. (With ReturnToService=2 a downed node whose slurmd
answers is back at once, so its record shows no reason; a drained node keeps its reason: recorded as well.)
Each case keeps the exact commands the harness's poller runs (harness/slurm.py: sacct_argv, controller_argv,
SCONTROL_JOB) with their return code, stdout and stderr, in tests/slurm_states/recorded.json. Recordings differ
from run to run (elapsed seconds; whether sacct still lags): tests/test_slurm_states.py names some recorded
figures, so check it after recording anew. Outages are recorded with a copy of slurm.conf whose controller or
accounting port is closed: the very messages the commands print while slurmctld restarts or slurmdbd is down,
without disturbing the cluster. PREEMPTED needs a preemption set-up the local cluster does not have: not recorded.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness import slurm, sites  # noqa: E402

OUT = Path(__file__).with_name("recorded.json")
USER = "course"
SITE = sites.resolve("local")


def as_user(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", USER, "--", *argv], capture_output=True, text=True, **kw)


def record(ids: list[str], env: dict | None = None) -> dict:
    """The three commands of the poller for `ids`, as the course user sees them."""
    out = {}
    for key, argv in (("sacct", slurm.sacct_argv(ids)), ("squeue", slurm.controller_argv(ids)),
                      ("scontrol", [*slurm.SCONTROL_JOB, *ids[:1]])):
        done = as_user(["env", *(f"{k}={v}" for k, v in (env or {}).items()), *argv])
        out[key] = {"argv": argv, "rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    return out


def submit(folder: Path, body: str, *options: str) -> str:
    script = folder / f"job{time.monotonic_ns()}.sh"
    script.write_text(f"#!/bin/bash\n{body}\n")
    script.chmod(0o755)
    argv = ["sbatch", "--parsable", f"--chdir={folder}", "--output=/dev/null", "--job-name=record-states",
            *SITE.sbatch_options(), "--cpus-per-task=1", *options, str(script)]
    done = as_user(argv)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def state(job_id: str) -> dict[str, str]:
    return (slurm.show("job", job_id) or [{}])[0]


def until(job_id: str, test, timeout_s: float = 240) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record_ = state(job_id)
        if test(record_):
            return record_
        time.sleep(0.5)
    raise SystemExit(f"job {job_id} never got there: {state(job_id)}")


def ended(job_id: str) -> dict[str, str]:
    until(job_id, lambda r: r.get("JobState") in slurm.FINISHED)
    time.sleep(3)  # let accounting catch up, so sacct shows the end as well
    return state(job_id)


def scontrol(*args: str, check: bool = True) -> None:
    done = subprocess.run(["scontrol", *args], capture_output=True, text=True)
    assert done.returncode == 0 or not check, done.stderr


def broken_conf(folder: Path, key: str) -> dict:
    """SLURM_CONF of a copy of slurm.conf whose `key` port is closed (port 9: discard, nothing listens)."""
    text = Path("/etc/slurm/slurm.conf").read_text()
    text = re.sub(rf"^{key}=.*$", f"{key}=9", text, flags=re.MULTILINE)
    conf = folder / f"{key}.conf"
    conf.write_text(text)
    conf.chmod(0o644)
    return {"SLURM_CONF": str(conf)}


def main() -> None:
    cases: dict[str, dict] = {}
    folder = Path(tempfile.mkdtemp(prefix="record-states-", dir="/tmp"))
    os.chmod(folder, 0o777)
    go = folder / "go"
    wait_go = f"while [ ! -e {go} ]; do sleep 0.5; done"
    submitted: list[str] = []
    try:
        timeout = submit(folder, "sleep 600", "--time=00:01:00")
        failed = submit(folder, "echo failing >&2; exit 3")
        done_ok = submit(folder, "echo ok")
        oom = submit(folder, f"{sys.executable} -c 'x = bytearray(600 * 2**20)'", "--mem=200M")
        submitted += [timeout, failed, done_ok, oom]
        for name, job_id in (("COMPLETED", done_ok), ("FAILED", failed), ("OUT_OF_MEMORY", oom)):
            ended(job_id)
            cases[name] = {"job": job_id, **record([job_id])}
        running = submit(folder, wait_go)
        submitted.append(running)
        until(running, lambda r: r.get("JobState") == "RUNNING")
        cases["RUNNING"] = {"job": running, **record([running])}
        # pending reasons: ordinary (BeginTime), never clears (DependencyNeverSatisfied, JobHeldUser), a follow-up
        # waiting for the running job (Dependency)
        begin = submit(folder, "true", "--begin=now+600")
        dependency = submit(folder, "true", f"--dependency=afterok:{failed}")
        held = submit(folder, "true", "--hold")
        follow_up = submit(folder, "true", f"--dependency=afterany:{running}")
        submitted += [begin, dependency, held, follow_up]
        until(dependency, lambda r: r.get("Reason") == "DependencyNeverSatisfied")
        until(follow_up, lambda r: r.get("Reason") == "Dependency")
        for name, job_id in (("PENDING_BeginTime", begin), ("PENDING_DependencyNeverSatisfied", dependency),
                             ("PENDING_JobHeldUser", held), ("PENDING_Dependency", follow_up)):
            cases[name] = {"job": job_id, **record([job_id])}
        # requeued by an administrator, and requeued into a hold
        requeue = submit(folder, wait_go, "--requeue")
        hold = submit(folder, wait_go, "--requeue")
        submitted += [requeue, hold]
        until(requeue, lambda r: r.get("JobState") == "RUNNING")
        until(hold, lambda r: r.get("JobState") == "RUNNING")
        as_user(["scontrol", "requeue", requeue])
        as_user(["scontrol", "requeuehold", hold])
        until(requeue, lambda r: r.get("JobState") == "PENDING")
        time.sleep(2)
        cases["REQUEUED_pending"] = {"job": requeue, **record([requeue])}
        until(hold, lambda r: r.get("JobState") == "PENDING")
        cases["REQUEUE_HOLD"] = {"job": hold, **record([hold])}
        as_user(["scancel", requeue, hold, begin, dependency, held])
        cancelled = submit(folder, wait_go)
        submitted.append(cancelled)
        until(cancelled, lambda r: r.get("JobState") == "RUNNING")
        as_user(["scancel", cancelled])
        ended(cancelled)
        cases["CANCELLED"] = {"job": cancelled, **record([cancelled])}
        ended(timeout)
        cases["TIMEOUT"] = {"job": timeout, **record([timeout])}
        as_user(["scancel", running])  # frees the nodes for what follows
        # a drained node the job asks for: ReqNodeNotAvail
        scontrol("update", "nodename=dc02", "state=drain", "reason=recording ReqNodeNotAvail")
        try:
            wanting = submit(folder, "true", "--nodelist=dc02")
            submitted.append(wanting)
            until(wanting, lambda r: r.get("Reason", "").startswith("ReqNodeNotAvail"), 60)
            cases["PENDING_ReqNodeNotAvail"] = {"job": wanting, **record([wanting])}
            node = subprocess.run([*slurm.SCONTROL_NODE, "dc02"], capture_output=True, text=True)
            cases["node_drained"] = {"job": "", "node": {"argv": [*slurm.SCONTROL_NODE, "dc02"], "rc": node.returncode,
                                                         "stdout": node.stdout, "stderr": node.stderr}}
            as_user(["scancel", wanting])
        finally:
            scontrol("update", "nodename=dc02", "state=resume", check=False)
        # a node that fails under a running job: NODE_FAIL, and the requeue of a job that allows it
        lost = submit(folder, wait_go, "--nodelist=dc01", "--no-requeue")
        again = submit(folder, wait_go, "--nodelist=dc01", "--requeue")
        submitted += [lost, again]
        until(lost, lambda r: r.get("JobState") == "RUNNING")
        until(again, lambda r: r.get("JobState") == "RUNNING")
        scontrol("update", "nodename=dc01", "state=down", "reason=recording NODE_FAIL: node lost power")
        try:
            node = subprocess.run([*slurm.SCONTROL_NODE, "dc01"], capture_output=True, text=True)  # still down
            ended(lost)
            cases["NODE_FAIL"] = {"job": lost, **record([lost])}
            cases["NODE_FAIL"]["node"] = {"argv": [*slurm.SCONTROL_NODE, "dc01"], "rc": node.returncode,
                                          "stdout": node.stdout, "stderr": node.stderr}
            node = subprocess.run([*slurm.SCONTROL_NODE, "dc01"], capture_output=True, text=True)
            cases["NODE_FAIL"]["node_back"] = {"argv": [*slurm.SCONTROL_NODE, "dc01"], "rc": node.returncode,
                                               "stdout": node.stdout, "stderr": node.stderr}
            until(again, lambda r: r.get("JobState") == "PENDING" and r.get("Restarts") == "1", 60)
            # accounting may still show the first allocation's NODE_FAIL for a moment: keep that answer if it comes
            for _ in range(20):
                cases["NODE_FAIL_requeued"] = {"job": again, **record([again])}
                if "|NODE_FAIL|" in cases["NODE_FAIL_requeued"]["sacct"]["stdout"]:
                    break
                time.sleep(0.2)
        finally:
            scontrol("update", "nodename=dc01", "state=resume", check=False)  # already back if its slurmd answered (ReturnToService=2)
        as_user(["scancel", again])
        cases["vanished"] = {"job": "999999", **record(["999999"])}
        cases["controller_down"] = {"job": done_ok, **record([done_ok], broken_conf(folder, "SlurmctldPort"))}
        cases["accounting_down"] = {"job": done_ok,
                                    **record([done_ok], broken_conf(folder, "AccountingStoragePort"))}
    finally:
        go.touch()
        if submitted:
            subprocess.run(["scancel", *submitted], capture_output=True)
        write(cases)


def write(cases: dict) -> None:
    version = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
    OUT.write_text(json.dumps({"slurm": version, "recorded": time.strftime("%Y-%m-%d"), "cases": cases},
                              indent=1) + "\n")
    print(f"{len(cases)} cases written to {OUT}: {', '.join(cases)}")


if __name__ == "__main__":
    main()
