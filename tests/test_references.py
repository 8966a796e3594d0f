"""Reference figures of a site profile ([jobs.<name>.reference], harness/references.py), without a cluster: the
comparison, the one-line verdicts, and the one-line errors for a bad profile. The mechanism on the real local
cluster, with a drastically slowed program, is tests/test_matrix.py's
test_a_figure_far_below_its_reference_fails_the_job_with_one_line."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from harness import references, sites, slurm
from harness.cluster_run import judge
from harness.exercises import ClusterJob, cluster_jobs
from harness.references import Reference

from site_profiles import load_error, write_profile

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
    return write_profile(folder, "refs", f"{without_references()}\n[jobs.{job}.reference]\n{body}\n")


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
    found = references.problems(held, figures, "jobs.x.reference of local.toml")
    assert found == ["figure tflops is missing from the job's results, but jobs.x.reference of local.toml "
                     "holds it to a reference 0.02, tolerance 0.75 (allowed: at least 0.005)"], found


# --- the verdict of a job --------------------------------------------------------------------------------------------

def a_figure_of_a_job(better: str) -> tuple[str, ClusterJob, str]:
    """A cluster job of the registry and one of its figures where `better` is better: "higher" a rate, "lower" a
    time (any one: the mechanism is the same for every job)."""
    for name, (_, job) in cluster_jobs().items():
        for figure, direction in job.figures.items():
            if direction == better:
                return name, job, figure
    raise AssertionError(f"no cluster job of the registry declares a figure where {better} is better")


def a_rate_of_a_job() -> tuple[str, ClusterJob, str]:
    return a_figure_of_a_job("higher")


def a_time_of_a_job() -> tuple[str, ClusterJob, str]:
    return a_figure_of_a_job("lower")


def judged(tmp_path: Path, value: float | None, state: str = "COMPLETED") -> list[str]:
    """judge() of a job of the registry on a profile holding its rate to 0.02 with tolerance 0.75, the job's own
    check standing in as one that reports `value` (None: no figure), its program's report as the reporter writes
    it, on a node that gave it all it asked for."""
    name, job, figure = a_rate_of_a_job()
    site = sites.load(profile_with(tmp_path, name, f"{figure} = {{ value = 0.02, tolerance = 0.75 }}"))
    reporting = dataclasses.replace(job, check=lambda result: ({} if value is None else {figure: value}, []))
    work = tmp_path / "job"
    (work / "reports").mkdir(parents=True, exist_ok=True)
    (work / "reports" / "report-dc01-1.json").write_text(json.dumps(
        {"pid": 1, "host": "dc01", "argv": [job.programs[-1]], "cores": site.job(name).cpus_per_task,
         "cuda_visible_devices": ",".join(map(str, range(site.gpus_per_node))), "slurm": {"nodename": "dc01"},
         "network": []}))
    ended = slurm.Job(name=name, job_id="9", label=f"{name}-t", state=state,
                      exit_code="0:0" if state == "COMPLETED" else "0:15")
    return judge(ended, work, reporting, site).problems


def test_a_verdict_fails_on_its_reference_and_passes_within_it(tmp_path):
    name, _, figure = a_rate_of_a_job()
    assert judged(tmp_path, 0.0019) == [
        f"figure {figure} = 0.0019 is below its allowed range: reference 0.02, tolerance 0.75 (allowed: at least "
        f"0.005; higher is better), from jobs.{name}.reference of refs.toml"], "a rate far below its reference"
    assert judged(tmp_path, 0.0051) == [], "a figure inside its tolerance must pass"
    assert judged(tmp_path, None) == [
        f"figure {figure} is missing from the job's results, but jobs.{name}.reference of refs.toml holds it to a "
        "reference 0.02, tolerance 0.75 (allowed: at least 0.005)"], "a referenced figure the job did not report"


def test_a_failed_job_is_not_also_blamed_for_its_figures(tmp_path):
    """A job that did not complete has its state as its problem: no figure line on top of it."""
    problems = judged(tmp_path, 0.0019, state="TIMEOUT")
    assert len(problems) == 1 and "TIMEOUT" in problems[0], problems


# --- the profile ---------------------------------------------------------------------------------------------------

def test_shipped_profiles_hold_only_figures_their_jobs_report_with_sane_tolerances():
    """Both shipped profiles load (unknown figures, bad tolerances would not), and each reference's direction is the
    one its job declares."""
    for name in ("local", "jureca-dc"):
        site = sites.resolve(name)
        for job, settings in site.jobs.items():
            declared = cluster_jobs()[job][1].figures
            assert set(settings.references) <= set(declared), \
                f"{name}.toml holds figures {sorted(set(settings.references) - set(declared))} that {job} never reports"
            for figure, held in settings.references.items():
                assert held.better == declared[figure], f"{name}.toml: {job}'s {figure} is better {declared[figure]}"


def test_a_job_that_declares_a_figure_without_its_better_direction_is_refused():
    with pytest.raises(ValueError) as error:
        ClusterJob(name="x", sbatch="x.sbatch", programs=("x.py",), check=lambda result: ({}, []),
                   figures={"steps_per_s": "faster"})
    assert str(error.value) == ("cluster job `x` declares figures {'steps_per_s': 'faster'}: say which is better, "
                                "\"higher\" or \"lower\""), str(error.value)


def test_an_unknown_figure_names_the_figures_the_job_reports(tmp_path):
    name, job, figure = a_time_of_a_job()
    message = load_error(profile_with(tmp_path, name, f"{figure}x = {{ value = 42, tolerance = 0.5 }}"))
    assert message == (f"unknown figure `jobs.{name}.reference.{figure}x`: the job reports these figures that may "
                       f"hold a reference: {', '.join(job.figures)}"), message


@pytest.mark.parametrize("body, expected", [
    ("{f} = 0.02", "key `jobs.{j}.reference.{f}` must be a table: `{f} = {{ value = <reference>, "
                   "tolerance = <fraction> }}`, not 0.02"),
    ("{f} = {{ value = 0.02 }}", "missing key `jobs.{j}.reference.{f}.tolerance` (a reference is `{{ value = "
                                 "<reference>, tolerance = <fraction> }}`)"),
    ("{f} = {{ value = 0.02, tolerance = 0.5, better = \"lower\" }}",
     "unknown key `jobs.{j}.reference.{f}.better` (a reference has only value and tolerance; which direction "
     "is better comes from the job: {f} is better higher)"),
    ("{f} = {{ value = \"fast\", tolerance = 0.5 }}", "key `jobs.{j}.reference.{f}.value` must be a number, "
                                                     "not 'fast'"),
    ("{f} = {{ value = 0, tolerance = 0.5 }}", "key `jobs.{j}.reference.{f}.value` must be above 0 (a measured "
                                              "{f}), not 0"),
    ("{f} = {{ value = 0.02, tolerance = 4 }}",
     "key `jobs.{j}.reference.{f}.tolerance` must be above 0 and below 1, not 4: higher is better for {f}, "
     "so the run may be that fraction lower (0.75: at least a quarter of the reference)"),
], ids=["not-a-table", "no-tolerance", "direction-given", "value-text", "value-zero", "rate-tolerance-4"])
def test_a_bad_reference_is_one_line_naming_the_key(tmp_path, body, expected):
    name, _, figure = a_rate_of_a_job()
    message = load_error(profile_with(tmp_path, name, body.format(j=name, f=figure)))
    assert message == expected.format(j=name, f=figure), message


def test_a_time_takes_a_tolerance_above_one_but_not_a_negative_one(tmp_path):
    name, _, figure = a_time_of_a_job()
    site = sites.load(profile_with(tmp_path, name, f"{figure} = {{ value = 10, tolerance = 3 }}"))
    assert site.job(name).references[figure].limit == 40, "lower is better: at most 4 x 10 s"
    message = load_error(profile_with(tmp_path, name, f"{figure} = {{ value = 10, tolerance = -0.5 }}"))
    assert message.startswith(f"key `jobs.{name}.reference.{figure}.tolerance` must be above 0, not -0.5"), message


def test_a_reference_that_is_not_a_table_names_the_key(tmp_path):
    name = next(iter(cluster_jobs()))
    text = without_references().replace(f"[jobs.{name}]\n", f"[jobs.{name}]\nreference = 3\n")
    assert text != without_references(), f"the local profile has no [jobs.{name}] table to put the key in"
    assert load_error(write_profile(tmp_path, "flat", text)) == f"key `jobs.{name}.reference` must be a table, not 3"
