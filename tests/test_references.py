"""Reference figures of a site profile ([jobs.<name>.reference], harness/references.py), without a cluster: the
comparison, the one-line verdicts, and the one-line errors for a bad profile. The mechanism on the real local
cluster, with a drastically slowed program, is tests/test_cluster_harness.py's
test_a_figure_far_below_its_reference_fails_the_job_with_one_line."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import references, sites, slurm
from harness.cluster_run import judge
from harness.exercises import ClusterJob, cluster_jobs
from harness.references import Reference
from harness.sites import SiteError

LOCAL = sites.SITES_DIR / "local.toml"


REFERENCE_TABLE = re.compile(r"^\[jobs\.[\w-]+\.reference\].*\n(?:[^\[\n].*\n|\n)*", re.MULTILINE)


def without_references() -> str:
    """The local profile's text with its [jobs.<name>.reference] tables taken out."""
    text = REFERENCE_TABLE.sub("", LOCAL.read_text())
    assert not re.search(r"^\[jobs\.[\w-]+\.reference\]", text, re.MULTILINE), \
        "the local profile's reference tables could not be taken out"
    return text


def profile_with(folder: Path, job: str, body: str) -> Path:
    """The local profile with its own reference tables taken out and `[jobs.<job>.reference]` holding `body`."""
    text = without_references()
    path = folder / "refs.toml"
    path.write_text(f"{text}\n[jobs.{job}.reference]\n{body}\n")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(SiteError) as error:
        sites.load(path)
    message = str(error.value)
    assert "\n" not in message, f"a profile error must be one line, got: {message!r}"
    assert message.startswith(f"{path}: "), f"a profile error names its file first: {message}"
    return message.removeprefix(f"{path}: ")


# --- the comparison ----------------------------------------------------------------------------------------------

def test_only_the_worse_side_is_bounded_and_the_limit_itself_holds():
    rate = Reference("tflops", 0.02, 0.75, "higher")  # at least a quarter of the reference
    assert rate.limit == pytest.approx(0.005), rate
    assert rate.holds(0.005) and rate.holds(0.02) and rate.holds(20.0), "a rate at or above its limit holds"
    assert not rate.holds(0.00499), "a rate below a quarter of its reference must not hold"
    time = Reference("seconds_per_epoch", 42, 0.5, "lower")  # at most 1.5 times the reference
    assert time.limit == pytest.approx(63), time
    assert time.holds(63) and time.holds(1.0), "a time at or below its limit holds (a faster machine is no failure)"
    assert not time.holds(63.1), "a time above 1.5 x 42 s must not hold"


def test_a_figure_out_of_range_is_one_line_with_value_reference_tolerance_and_range():
    held = {"tflops": Reference("tflops", 0.02, 0.75, "higher"),
            "seconds_per_epoch": Reference("seconds_per_epoch", 42, 0.5, "lower")}
    found = references.problems(held, {"tflops": 0.0019, "seconds_per_epoch": 120.0, "device": "cpu"},
                                "jobs.x.reference of site.toml")
    assert found == [
        "figure tflops = 0.0019 is below its allowed range: reference 0.02, tolerance 0.75 (allowed: at least 0.005; "
        "higher is better), from jobs.x.reference of site.toml",
        "figure seconds_per_epoch = 120 is above its allowed range: reference 42, tolerance 0.5 (allowed: at most "
        "63; lower is better), from jobs.x.reference of site.toml",
    ], found
    assert references.problems(held, {"tflops": 0.006, "seconds_per_epoch": 40.0}, "x") == [], \
        "figures inside their tolerance must give no problem"


@pytest.mark.parametrize("figures", [{}, {"tflops": None}, {"tflops": "n/a"}], ids=["absent", "none", "text"])
def test_a_referenced_figure_missing_from_the_results_fails_saying_so(figures):
    held = {"tflops": Reference("tflops", 0.02, 0.75, "higher")}
    found = references.problems(held, figures, "jobs.matrix.reference of local.toml")
    assert found == ["figure tflops is missing from the job's results, but jobs.matrix.reference of local.toml "
                     "holds it to a reference 0.02, tolerance 0.75 (allowed: at least 0.005)"], found


# --- the verdict of a job --------------------------------------------------------------------------------------------

def test_a_matrix_verdict_fails_on_its_reference_and_passes_within_it(tmp_path):
    """judge() of a completed matrix job on a profile that holds TFLOP/s to 0.02 with tolerance 0.75: the job's
    own lines as matrix_gpu.py prints them, its report as the job's reporter writes it."""
    site = sites.load(profile_with(tmp_path, "matrix", "tflops = { value = 0.02, tolerance = 0.75 }"))
    job = cluster_jobs()["matrix"][1]
    work = tmp_path / "job"
    (work / "reports").mkdir(parents=True)
    (work / "reports" / "report-dc01-1.json").write_text(json.dumps(
        {"pid": 1, "host": "dc01", "argv": ["matrix_gpu.py"], "cores": 1, "cuda_visible_devices": "0,1,2,3",
         "slurm": {"nodename": "dc01"}, "network": [], "fits": []}))
    ended = slurm.Job(name="matrix", job_id="9", label="matrix-t", state="COMPLETED", exit_code="0:0")
    (work / "output.9").write_text("device: cpu\nTFLOP/s: 0.0019\ncheck: passed (largest relative error 1.0e-07)\n")
    slow = judge(ended, work, job, site)
    assert slow.problems == ["figure tflops = 0.0019 is below its allowed range: reference 0.02, tolerance 0.75 "
                             "(allowed: at least 0.005; higher is better), from jobs.matrix.reference of refs.toml"], \
        slow.report()
    (work / "output.9").write_text("device: cpu\nTFLOP/s: 0.0051\ncheck: passed (largest relative error 1.0e-07)\n")
    assert judge(ended, work, job, site).passed, "a figure inside its tolerance must pass"
    (work / "output.9").write_text("device: cpu\ncheck: passed (largest relative error 1.0e-07)\n")
    without = judge(ended, work, job, site).problems
    assert "figure tflops is missing from the job's results, but jobs.matrix.reference of refs.toml holds it to " \
           "a reference 0.02, tolerance 0.75 (allowed: at least 0.005)" in without, without


def test_a_failed_job_is_not_also_blamed_for_its_figures(tmp_path):
    """A job that did not complete has its state as its problem: no figure line on top of it."""
    site = sites.load(profile_with(tmp_path, "matrix", "tflops = { value = 0.02, tolerance = 0.75 }"))
    ended = slurm.Job(name="matrix", job_id="9", label="matrix-t", state="TIMEOUT", exit_code="0:15")
    verdict = judge(ended, tmp_path / "job", cluster_jobs()["matrix"][1], site)
    assert len(verdict.problems) == 1 and "TIMEOUT" in verdict.problems[0], verdict.report()


# --- the profile ---------------------------------------------------------------------------------------------------

def test_shipped_profiles_hold_only_figures_their_jobs_report_with_sane_tolerances():
    """Both shipped profiles load (unknown figures, bad tolerances would not); JURECA-DC holds the cat classifier to
    the course's own A100 run, 42 s per epoch."""
    for name in ("local", "jureca-dc"):
        site = sites.resolve(name)
        for job, settings in site.jobs.items():
            declared = cluster_jobs()[job][1].figures
            assert set(settings.references) <= set(declared), (name, job, settings.references)
    cats = sites.resolve("jureca-dc").job("cats").references
    assert cats["seconds_per_epoch"].value == 42 and cats["seconds_per_epoch"].better == "lower", cats
    local = sites.resolve("local")
    assert local.job("matrix").references["tflops"].better == "higher", local.job("matrix").references


def test_a_job_that_declares_a_figure_without_its_better_direction_is_refused():
    with pytest.raises(ValueError) as error:
        ClusterJob(name="x", sbatch="x.sbatch", programs=("x.py",), check=lambda result: ({}, []),
                   figures={"steps_per_s": "faster"})
    assert str(error.value) == ("cluster job `x` declares figures {'steps_per_s': 'faster'}: say which is better, "
                                "\"higher\" or \"lower\""), str(error.value)


def test_an_unknown_figure_names_the_figures_the_job_reports(tmp_path):
    message = load_error(profile_with(tmp_path, "cats", "seconds_per_epok = { value = 42, tolerance = 0.5 }"))
    assert message == ("unknown figure `jobs.cats.reference.seconds_per_epok`: the job reports these figures that may "
                       "hold a reference: seconds_per_epoch, images_per_second"), message


@pytest.mark.parametrize("body, expected", [
    ("tflops = 0.02", "key `jobs.matrix.reference.tflops` must be a table: `tflops = { value = <reference>, "
                      "tolerance = <fraction> }`, not 0.02"),
    ("tflops = { value = 0.02 }", "missing key `jobs.matrix.reference.tflops.tolerance` (a reference is `{ value = "
                                  "<reference>, tolerance = <fraction> }`)"),
    ("tflops = { value = 0.02, tolerance = 0.5, better = \"lower\" }",
     "unknown key `jobs.matrix.reference.tflops.better` (a reference has only value and tolerance; which direction "
     "is better comes from the job: tflops is better higher)"),
    ("tflops = { value = \"fast\", tolerance = 0.5 }", "key `jobs.matrix.reference.tflops.value` must be a number, "
                                                       "not 'fast'"),
    ("tflops = { value = 0, tolerance = 0.5 }", "key `jobs.matrix.reference.tflops.value` must be above 0 (a measured "
                                                "tflops), not 0"),
    ("tflops = { value = 0.02, tolerance = 4 }",
     "key `jobs.matrix.reference.tflops.tolerance` must be above 0 and below 1, not 4: higher is better for tflops, "
     "so the run may be that fraction lower (0.75: at least a quarter of the reference)"),
], ids=["not-a-table", "no-tolerance", "direction-given", "value-text", "value-zero", "rate-tolerance-4"])
def test_a_bad_reference_is_one_line_naming_the_key(tmp_path, body, expected):
    message = load_error(profile_with(tmp_path, "matrix", body))
    assert message == expected, message


def test_a_time_takes_a_tolerance_above_one_but_not_a_negative_one(tmp_path):
    site = sites.load(profile_with(tmp_path, "cats", "seconds_per_epoch = { value = 10, tolerance = 3 }"))
    assert site.job("cats").references["seconds_per_epoch"].limit == 40, "lower is better: at most 4 x 10 s"
    message = load_error(profile_with(tmp_path, "cats", "seconds_per_epoch = { value = 10, tolerance = -0.5 }"))
    assert message.startswith("key `jobs.cats.reference.seconds_per_epoch.tolerance` must be above 0, not -0.5"), \
        message


def test_a_reference_that_is_not_a_table_names_the_key(tmp_path):
    text = without_references().replace("[jobs.matrix]\n", "[jobs.matrix]\nreference = 3\n")
    path = tmp_path / "flat.toml"
    path.write_text(text)
    assert load_error(path) == "key `jobs.matrix.reference` must be a table, not 3"
