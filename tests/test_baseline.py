"""A cluster job's baseline run (ClusterJob.baseline), judged without a cluster from recorded files.

A job may declare a baseline: its own batch script submitted once more with command-line overrides of its #SBATCH
lines (one node and one GPU, say), at the same time, from the folder `<job>/baseline/`. The job's check gets that run
as `result.baseline`, to set a figure of its own against it (exercise 5's scaling efficiency). Here, with folders
written as a finished run leaves them and a check of the test's own: the check gets the baseline's Slurm view, output
and reports apart from the job's; the verdict's history shows it; and a figure the check could not give because of a
problem it names is not also reported missing by the site's reference. The submission itself (the overrides on the
command line, its own folder, the run's label) is exercise 5's live test on the local cluster,
tests/test_ddp.py::test_the_cluster_job_holds_its_efficiency_against_the_one_gpu_baseline.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness import sites, slurm
from harness.cluster_run import BASELINE, JobResult, judge
from harness.exercises import ClusterJob
from harness.references import Reference
from harness.sites import JobSettings

SITE = sites.load(sites.SITES_DIR / "local.toml")
SETTINGS = JobSettings(cpus_per_task=1)


def finished(folder: Path, job_id: str, pid: int, output: str) -> slurm.Job:
    """A folder as a completed job leaves it: its output file and one process's report of `prog.py`."""
    (folder / "reports").mkdir(parents=True)
    (folder / f"output.{job_id}").write_text(output)
    (folder / "reports" / f"report-dc01-{pid}.json").write_text(json.dumps(
        {"pid": pid, "host": "dc01", "argv": ["prog.py"], "cores": 1, "slurm": {"nodename": "dc01"}, "network": []}))
    job = slurm.Job(name="job", job_id=job_id, label="job-t", state="COMPLETED", exit_code="0:0")
    job.history.append("COMPLETED 0:0 in 3 s")
    return job


def a_job(check, baseline: tuple[str, ...] = ("--nodes=1",), figures: dict | None = None) -> ClusterJob:
    return ClusterJob(name="job", sbatch="job.sbatch", programs=("prog.py",), check=check, gpus=False,
                      baseline=baseline, figures=figures or {})


def test_the_check_gets_the_baseline_run_apart_from_the_job(tmp_path: Path) -> None:
    seen: list[JobResult] = []
    job = a_job(lambda result: (seen.append(result), ({}, []))[1])
    main = finished(tmp_path, "11", 1, "the job's output")
    base = finished(tmp_path / BASELINE, "12", 2, "the baseline's output")
    verdict = judge(main, tmp_path, job, SITE, SETTINGS, baseline=base)
    assert verdict.passed, verdict.report()
    result = seen[0]
    assert result.baseline is not None and result.baseline.job is base, result
    assert result.baseline.workdir == tmp_path / BASELINE and result.baseline.output == "the baseline's output"
    assert [r.pid for r in result.baseline.reports] == [2] and [r.pid for r in result.reports] == [1], \
        "the job's and the baseline's reports must stay apart"
    assert verdict.history[-1] == base.line(), verdict.history

    judge(main, tmp_path, job, SITE, SETTINGS)  # judged without its baseline (none ran): the check gets None
    assert seen[1].baseline is None


def test_a_figure_the_check_explains_is_not_also_named_missing(tmp_path: Path) -> None:
    """The check names why it has no figure (its baseline failed, say): that line alone, not a second one saying
    the site's reference misses the figure. A figure missing without a problem of the check's is still named."""
    settings = JobSettings(cpus_per_task=1, references={"rate": Reference("rate", 10.0, 0.5, "higher")})
    main = finished(tmp_path, "11", 1, "")
    explained = a_job(lambda result: ({}, ["the baseline failed"]), figures={"rate": "higher"})
    assert judge(main, tmp_path, explained, SITE, settings).problems == ["the baseline failed"]
    silent = a_job(lambda result: ({}, []), figures={"rate": "higher"})
    problems = judge(main, tmp_path, silent, SITE, settings).problems
    assert len(problems) == 1 and problems[0].startswith("figure rate is missing from the job's results"), problems
