"""The cluster jobs of the course's exercises, submitted with the course's own sbatch files (`pytest --cluster`).

One test per job that an exercise module declares (harness/exercises/): adding an exercise adds its test here
without an edit. All jobs are submitted together before the first test runs (harness/fixtures_cluster.py); each
test judges its own job: Slurm's final state and exit code, what the programs got (GPUs, cores, no internet), and
the exercise's own check. A failure shows the verdict's report: state, problems, the end of the error file.
"""
import pytest

from harness.exercises import cluster_jobs

JOBS = cluster_jobs()


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.cluster(job=name)) for name in JOBS])
def test_cluster_job_passes_its_verdict(name, cluster_verdict):
    if not cluster_verdict.passed:  # judge() passes only a job that COMPLETED with exit code 0, and all checks
        pytest.fail(cluster_verdict.report(), pytrace=False)
