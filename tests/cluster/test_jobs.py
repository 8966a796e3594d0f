"""The GPU versions of the exercises, submitted with the course's own sbatch files (`pytest --cluster`).

All jobs are submitted together before the first of these tests runs (harness/fixtures_cluster.py);
each test judges its own job: Slurm's final state and exit code, then what the program printed and wrote.
"""
import pytest


def assert_completed(verdict):
    assert verdict.state == "COMPLETED" and verdict.exit_code == "0:0", verdict.report()


@pytest.mark.cluster(job="matrix")
def test_matrix_multiply_runs_on_the_site_gpu_and_matches_the_cpu(cluster_verdict, cluster_run):
    assert_completed(cluster_verdict)
    assert cluster_verdict.figures["check"] == "passed", cluster_verdict.report()
    if cluster_run.site.gpus_real:
        assert cluster_verdict.figures["device"] != "cpu", cluster_verdict.report()
    assert cluster_verdict.figures["tflops"] > 0, cluster_verdict.report()
    assert cluster_verdict.passed, cluster_verdict.report()


@pytest.mark.cluster(job="cats")
def test_cat_classifier_trains_offline_to_the_site_bar(cluster_verdict, cluster_run):
    assert_completed(cluster_verdict)
    bar = cluster_run.site.job("cats").error_rate_max
    assert cluster_verdict.figures.get("error_rate", 1.0) <= bar, cluster_verdict.report()
    assert cluster_verdict.passed, cluster_verdict.report()  # model saved, TensorBoard events, no download
