"""The benchmark command works: its table formatter, RESULTS.md update, and one cheap part with real figures.

Benchmarks print figures and are not tests; this only proves `python -m bench` would not break on the day.
"""
from __future__ import annotations

import os

from bench import gpu_figures, report, results_file
from harness.exercises.cats import bench as data_pipeline


def test_table_formatter_aligns_numbers_and_marks_targets():
    text = report.text_table(["run", "seconds"], [["serial", 123.456], ["parallel", 7.0]])
    lines = text.splitlines()
    assert lines[0].split() == ["run", "seconds"]
    assert lines[2].endswith("123") and lines[3].endswith("7")
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    assert report.Check("speed-up", 1.8, 1.6).line().startswith("PASS")
    assert report.Check("overhead", 3.0, 2.0, higher_is_better=False).line().startswith("MISS")
    markdown = report.render_markdown(report.Part("x", "y", ["a", "b"], [["row", 0.5]]), "measured now")
    assert "| row | 0.5 |" in markdown


def test_results_file_replaces_only_the_part_that_ran(tmp_path):
    path = tmp_path / "RESULTS.md"
    results_file.update({"b": "B one", "a": "A one"}, ["a", "b"], path)
    results_file.update({"b": "B two"}, ["a", "b"], path)
    text = path.read_text()
    assert "A one" in text and "B two" in text and "B one" not in text
    assert text.index("A one") < text.index("B two")


def test_data_pipeline_measures_real_images_per_second():
    """Ten pictures at two sizes, batches of 4, no worker processes: about 15 s on two idle cores."""
    part = data_pipeline.run(images=10, size=32, batch_size=4, workers=0)
    assert part.skipped is None
    ceiling = f"ceiling: PIL decode+resize, {os.cpu_count()} processes"
    assert [row[1] for row in part.rows] == ["fastai, 0 workers", ceiling] * 2
    assert [row[0] for row in part.rows][::2] == ["stand-in 80x64", "scaled to Pets 500x375"]
    for pictures, label, count, seconds, rate, share in part.rows:
        assert count >= 4 and seconds > 0 and rate > 0 and share.endswith("%") and share != "0%", (pictures, label)
    assert len(part.checks) == 2 and all(check.value > 0 for check in part.checks)
    # No comparison of the two sizes' rates: with ten pictures on a busy machine, timing noise can invert them.


def test_gpu_figures_reads_the_latest_cluster_summary(tmp_path):
    summary = tmp_path / "run-1" / "cats" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text('{"test": "cats", "state": "COMPLETED", "figures": {"error_rate": 0.01, '
                       '"seconds_per_epoch": 40.5, "images_per_second": 150, "device": "cuda"}}')
    part = gpu_figures.run(out=tmp_path)
    row = part.rows[0]
    assert row[2] == "cuda" and row[3] == 40.5 and row[4] == 150 and row[5] == 0.01
    assert part.rows[-1][3] == 42.0  # the course's A100 reference stays beside it

    newer = tmp_path / "run-2" / "matrix" / "summary.json"  # harness/cluster_run.py's per-job verdict
    newer.parent.mkdir(parents=True)
    newer.write_text('{"test": "matrix", "state": "COMPLETED", "figures": {"device": "NVIDIA A100", "tflops": 120.5}}')
    row = gpu_figures.run(out=tmp_path).rows[0]
    assert row[0] == "run-2/matrix" and row[1] == "COMPLETED" and row[2] == "NVIDIA A100" and row[6] == 120.5


def test_local_suite_names_the_failed_tests(tmp_path):
    from bench.local_suite import failures, outcome_counts
    junit = tmp_path / "report.xml"
    junit.write_text('<testsuites><testsuite>'
                     '<testcase classname="tests.test_a" name="test_ok" time="1"/>'
                     '<testcase classname="tests.test_a" name="test_bad" time="2">'
                     '<failure message="assert 1 == 2&#10;more">trace</failure></testcase>'
                     '<testcase classname="tests.test_b" name="test_skip" time="0"><skipped/></testcase>'
                     '</testsuite></testsuites>')
    assert outcome_counts(junit) == {"passed": 1, "failed": 1, "skipped": 1}
    assert failures(junit) == ["tests.test_a::test_bad: assert 1 == 2"]
