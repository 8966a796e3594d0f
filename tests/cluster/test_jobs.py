"""The GPU versions of the exercises, submitted with the course's own sbatch files (`pytest --cluster`).

All jobs are submitted together before the first of these tests runs (harness/fixtures_cluster.py);
each test judges its own job: Slurm's final state and exit code, then what the program printed and wrote.
A failure shows the verdict's report: state, exit code, what is wrong, and the end of the error file.
"""
import pytest


def expect(ok: bool, verdict) -> None:
    if not ok:
        pytest.fail(verdict.report(), pytrace=False)


@pytest.mark.cluster(job="matrix")
def test_matrix_multiply_runs_on_the_site_gpu_and_matches_the_cpu(cluster_verdict, cluster_run):
    expect(cluster_verdict.state == "COMPLETED" and cluster_verdict.exit_code == "0:0", cluster_verdict)
    expect(cluster_verdict.figures["check"] == "passed", cluster_verdict)
    expect(not cluster_run.site.gpus_real or cluster_verdict.figures["device"] != "cpu", cluster_verdict)
    expect((cluster_verdict.figures["tflops"] or 0) > 0, cluster_verdict)
    expect(cluster_verdict.passed, cluster_verdict)


@pytest.mark.cluster(job="cats")
def test_cat_classifier_trains_offline_to_the_site_bar(cluster_verdict, cluster_run):
    expect(cluster_verdict.state == "COMPLETED" and cluster_verdict.exit_code == "0:0", cluster_verdict)
    bar = cluster_run.site.job("cats").error_rate_max
    expect(cluster_verdict.figures.get("error_rate", 1.0) <= bar, cluster_verdict)
    expect(cluster_verdict.passed, cluster_verdict)  # model saved, TensorBoard events, no download
