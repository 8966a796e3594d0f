"""Follow-up jobs (`--dependency=afterany`) through the harness's one Slurm client, on the local cluster.

A cluster job may declare follow-ups (ClusterJob.follow_ups): the harness submits each behind the one before with
`--dependency=afterany:<id>` and the same run label as its job (`slurm.submit(..., options=...)`), so that `wait`
follows the whole chain and a cancel by the run's tag finds every job of it, including those still pending on
their dependency. Here, with small batch scripts of the test's own:
* a chain of two runs one after the other: the follow-up pends on `Dependency` while the first runs, then runs;
* a first job that fails still starts its follow-up (afterany, not afterok);
* Ctrl-C's way out, a cancel by the run's tag (`slurm.cancel(..., tag=...)`, as ClusterRun.cancel does), leaves
  nothing of the chain in the queue.
The state machine itself (a follow-up's Dependency does not use up the pending limit) is tested without a cluster
in tests/test_slurm_states.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import slurm
from harness.localcluster import LocalCluster, submit_env
from harness.sites import SITES_DIR, load

SCRIPT = """#!/bin/bash
#SBATCH --job-name=follow-up-test
#SBATCH --time=00:02:00
echo "job $SLURM_JOB_ID started $(date +%s.%N)"
( {body} ) && status=0 || status=$?
echo "job $SLURM_JOB_ID ended $(date +%s.%N)"
exit "$status"
"""


def chain(tmp_path: Path, tag: str, bodies: list[str]) -> list[slurm.Job]:
    """One job per body, each behind the one before (afterany), all with the same run label."""
    site = load(SITES_DIR / "local.toml")
    jobs: list[slurm.Job] = []
    for n, body in enumerate(bodies):
        script = tmp_path / f"job{n}.sbatch"
        script.write_text(SCRIPT.format(body=body))
        options = ["--cpus-per-task=1"] + ([f"--dependency=afterany:{jobs[-1].job_id}"] if jobs else [])
        jobs.append(slurm.submit(script, name="chain", tag=tag, chdir=tmp_path, results=tmp_path, site=site,
                                 options=options, env=submit_env(), exclude=[j.job_id for j in jobs]))
    return jobs


def times(tmp_path: Path, job: slurm.Job) -> dict[str, float]:
    text = (tmp_path / f"output.{job.job_id}").read_text()
    return {word: float(value) for _, _, word, value in (line.split() for line in text.splitlines())}


@pytest.mark.slurm
def test_a_follow_up_runs_after_its_job_however_that_ended(local_slurm: LocalCluster, tmp_path: Path) -> None:
    tag = local_slurm.tag
    jobs = chain(tmp_path, tag, ["sleep 5; exit 3", "sleep 1"])
    local_slurm.jobs += [job.job_id for job in jobs]
    lines: list[str] = []
    slurm.wait(jobs, pending_limit_s=300, time_margin_s=120, log=lines.append)
    first, follow_up = jobs
    assert (first.state, first.exit_code) == ("FAILED", "3:0"), lines
    assert (follow_up.state, follow_up.exit_code) == ("COMPLETED", "0:0"), lines
    assert follow_up.history[0].startswith("PD (Dependency)"), f"the follow-up was not seen waiting: {lines}"
    assert times(tmp_path, follow_up)["started"] >= times(tmp_path, first)["ended"], \
        "the follow-up started before its job had ended"
    assert not follow_up.given_up and not first.given_up, lines
    print("\n".join(lines))


@pytest.mark.slurm
def test_cancelling_by_the_run_tag_takes_the_whole_chain(local_slurm: LocalCluster, tmp_path: Path) -> None:
    tag = local_slurm.tag
    jobs = chain(tmp_path, tag, ["sleep 100", "sleep 100", "sleep 100"])
    local_slurm.jobs += [job.job_id for job in jobs]
    queued = sorted(slurm.tagged(tag))
    assert queued == sorted(job.job_id for job in jobs), f"the run tag finds {queued}, the chain is {jobs}"
    ids = slurm.cancel([], tag=tag)  # as after a harness that lost its records: the tag alone
    assert sorted(ids) == sorted(job.job_id for job in jobs), ids
    slurm.wait(jobs, pending_limit_s=120, time_margin_s=60, log=lambda line: None)
    assert {job.state for job in jobs} == {"CANCELLED"}, [job.line() for job in jobs]
    assert not slurm.tagged(tag), f"jobs of the chain still queued: {slurm.tagged(tag)}"
