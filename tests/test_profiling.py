"""Exercise 7: where the time goes. profile_train.py traces a few training steps with torch.profiler, on the CPU
with the Mini-Pets stand-ins (a few seconds per run); the checks read the traces it wrote, not its printout.

The start (LOADER=jpeg) must be data-bound in its own trace, the fix (LOADER=preloaded) must not, and must train on
the very same pictures; bf16 autocast must follow float32 within its rounding. Each check also runs on deliberately
broken copies of the solution, which it must catch with their cause.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from harness import slurm
from harness.cluster_run import JobResult
from harness.exercises import ROOT
from harness.exercises.profiling import EXERCISE, checks
from harness.exercises.profiling.cluster import check_profile_job
from harness.exercises.profiling.fixtures import profile_runs
from harness.exercises.profiling.trace import TraceError, step_times
from harness.sites import load as load_site

from broken_copies import broken_copy_of
from exercise_scripts import batch_script_test

PROGRAM = "profile_train.py"
PRELOAD = "    images = torch.stack([prepared(path) for path in paths])"
# Broken copies of the solution: (its replacements (old, new), the check that must catch it, words it must say)
BROKEN = {
    "one DataLoader worker instead of a fix": (
        [("JpegFolder(paths) if LOADER == \"jpeg\" else preload(paths)", "JpegFolder(paths)"),
         ("drop_last=True,", "drop_last=True, num_workers=0 if LOADER == \"jpeg\" else 1,")],
        "fix", "still shows the DataLoader"),
    "preloading only the file names": (
        [("    return torch.utils.data.TensorDataset(images, labels)", "    return JpegFolder(paths)")],
        "fix", "still shows the DataLoader"),
    "pictures changed while preloading": ([(PRELOAD, PRELOAD + " // 2")], "same", "the very pictures"),
    "no trace written": ([("on_trace_ready=lambda prof: prof.export_chrome_trace(trace)", "on_trace_ready=None")],
                         "fix", "wrote no trace"),
}


def broken_copy(folder: Path, mistake: str) -> Path:
    script = broken_copy_of(ROOT / "solutions" / PROGRAM, folder / PROGRAM, *BROKEN[mistake][0])
    for beside in ("train.py", "datasets.py"):  # exercise 5's network, which profile_train.py imports
        shutil.copy2(ROOT / "solutions" / beside, folder / beside)
    return script


def problems_of(runs: dict, which: str) -> list[str]:
    """What the check `which` (start, fix, same, bf16) says about a set of runs, each as the self-check reads it."""
    (start_ran, start_dir), (fixed_ran, fixed_dir) = runs["jpeg", "fp32"], runs["preloaded", "fp32"]
    start, problems = checks.read_trace(start_ran, start_dir, "jpeg")
    if which == "start" or problems:
        return problems or checks.start_problems(start)
    fixed, problems = checks.read_trace(fixed_ran, fixed_dir, "preloaded")
    if problems or which == "fix":
        return problems or checks.fix_problems(start, fixed)
    if which == "same":
        return checks.same_training_problems(start_ran.stdout, fixed_ran.stdout)
    bf16_ran, bf16_dir = runs["preloaded", "bf16"]
    _, problems = checks.read_trace(bf16_ran, bf16_dir, "preloaded", "bf16")
    return problems or checks.bf16_problems(fixed_ran.stdout, bf16_ran.stdout)


# --- the trace reader -----------------------------------------------------------------------------------------------

def write_trace(path: Path, events: list[dict]) -> Path:
    path.write_text(json.dumps({"traceEvents": events}))
    return path


def span(name: str, start: float, duration: float, tid: int = 1) -> dict:
    return {"ph": "X", "cat": "user_annotation", "name": name, "pid": 7, "tid": tid, "ts": start, "dur": duration}


def test_the_reader_takes_the_loader_time_inside_each_step(tmp_path: Path) -> None:
    """Two steps of 100 and 50 us; the loader's 60 us lie inside the first, 30 us half outside the second, and a
    loader span of another thread (a different process's view) does not count: shares 0.6 and 0.3, median 0.45."""
    path = write_trace(tmp_path / "t.json", [
        span("ProfilerStep#2", 0, 100), span("enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", 10, 60),
        span("ProfilerStep#3", 100, 50), span("enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__", 135, 30),
        span("enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", 100, 40, tid=2),
        {"ph": "M", "name": "process_name", "pid": 7}])
    times = step_times(path)
    assert times.steps == (2, 3), f"steps read: {times.steps}"
    assert times.loader_us == (60.0, 15.0), f"loader time per step: {times.loader_us}"
    assert times.loader_share == pytest.approx(0.45), f"loader share {times.loader_share}, want 0.45"
    assert times.median_step_ms == pytest.approx(0.075), f"median step {times.median_step_ms} ms, want 0.075"


@pytest.mark.parametrize("case", ["no steps", "not JSON"])
def test_the_reader_says_what_is_missing(tmp_path: Path, case: str) -> None:
    path = tmp_path / "t.json"
    if case == "no steps":
        write_trace(path, [span("enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", 0, 5)])
    else:
        path.write_text("{half a trace")
    with pytest.raises(TraceError) as error:
        step_times(path)
    assert ("prof.step()" if case == "no steps" else "not a readable JSON trace") in str(error.value), \
        f"{case}: the reader said {error.value}"


def test_the_books_example_traces_show_the_start_and_the_fix() -> None:
    """book/traces/ holds traces that harness/exercises/profiling/example.py had the solution write (gzipped, as
    Perfetto opens them): the lesson's story must be in them, judged by the same checks."""
    start = step_times(ROOT / "book" / "traces" / "jpeg-fp32.json.gz")
    fixed = step_times(ROOT / "book" / "traces" / "preloaded-fp32.json.gz")
    problems = checks.start_problems(start) + checks.fix_problems(start, fixed)
    assert not problems, f"book/traces/: {problems[0]} (run python -m harness.exercises.profiling.example)"


# --- the target's runs ----------------------------------------------------------------------------------------------

# The self-check's verdicts on the target's runs: what each claims, the check of problems_of that says it, and the run
# whose loader share it prints (None: its figures are losses, not a trace)
RUN_CHECKS = {
    "the start is data-bound in its trace": ("start", "jpeg"),
    "the fix lowers the loader share in its trace": ("fix", "preloaded"),
    "the fix trains on the same pictures": ("same", None),
    "bf16 losses follow float32 within its rounding": ("bf16", None),
}


@pytest.mark.parametrize("claim", list(RUN_CHECKS))
def test_the_runs_pass_the_check(profiling_runs: dict, claim: str) -> None:
    which, loader = RUN_CHECKS[claim]
    problems = problems_of(profiling_runs, which)
    assert not problems, problems[0]
    if loader:
        _, workdir = profiling_runs[loader, "fp32"]
        print(f"LOADER={loader}: loader share {step_times(checks.trace_path(workdir, loader)).loader_share:.2f}")


def test_the_program_prints_the_profilers_table(profiling_runs: dict) -> None:
    ran, _ = profiling_runs["jpeg", "fp32"]
    assert ran.returncode == 0 and "Self CPU time total" in ran.stdout, \
        "profile_train.py should print prof.key_averages().table(...)\n" + ran.explain()


@pytest.mark.broken_copy
@pytest.mark.parametrize("mistake", list(BROKEN))
def test_checks_catch_a_broken_copy(profiling_images: Path, tmp_path: Path, mistake: str) -> None:
    """Each check bites: a copy of the solution with one mistake is caught, with the words that name it."""
    script = broken_copy(tmp_path / "broken", mistake)
    runs = profile_runs(script, profiling_images, tmp_path / "runs", (("jpeg", "fp32"), ("preloaded", "fp32")))
    problems = problems_of(runs, BROKEN[mistake][1])
    words = BROKEN[mistake][2]
    assert problems and words in problems[0], f"{mistake}: the checks found {problems}"
    print(f"{mistake}: {problems[0]}")
    for run, (_, workdir) in runs.items():
        if checks.trace_path(workdir, *run).is_file():
            print(f"  {run}: loader share {step_times(checks.trace_path(workdir, *run)).loader_share:.3f}")


test_the_batch_script_passes_the_course_checker = batch_script_test(EXERCISE)


# --- the cluster job and the monitoring step --------------------------------------------------------------------------

@pytest.mark.broken_copy
def test_the_cluster_verdict_reads_the_traces_and_names_a_missing_one(profiling_runs: dict, tmp_path: Path) -> None:
    """check_profile_job judges a job folder holding the three traces of slurm/profile.sbatch (here from the local
    runs): it passes them with their figures, and a folder without the fix's trace fails naming it."""
    site = load_site(ROOT / "slurm" / "sites" / "local.toml")
    workdir = tmp_path / "job"
    for (loader, precision), (_, run_dir) in profiling_runs.items():
        target = checks.trace_path(workdir, loader, precision)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checks.trace_path(run_dir, loader, precision), target)
    result = JobResult(site, site.job("profile").as_dict(),
                       slurm.Job("profile", "4242", "profile-test", state="COMPLETED", exit_code="0:0"),
                       workdir, "", "", [])
    figures, problems = check_profile_job(result)
    assert not problems, problems[0]
    assert figures["jpeg_fp32_loader_share"] > figures["preloaded_fp32_loader_share"], f"figures: {figures}"
    assert figures["speedup_preloaded"] > 0, f"no speed-up figure: {figures}"
    checks.trace_path(workdir, "preloaded").unlink()
    _, problems = check_profile_job(result)
    assert problems and "LOADER=preloaded wrote no trace" in problems[0], f"a missing trace gave {problems}"


def lesson_command(pattern: str) -> str:
    """The command of book/profiling.md that starts with `pattern` (the lesson is the one source)."""
    found = re.findall(rf"^\s*({re.escape(pattern)}.*?)\s*$", (ROOT / "book" / "profiling.md").read_text(), re.M)
    assert found, f"book/profiling.md shows no command starting with {pattern!r}"
    return found[0]


@pytest.mark.slurm
def test_the_lessons_monitoring_step_reaches_a_running_job(local_slurm, tmp_path: Path) -> None:
    """`srun --overlap --jobid <id> nvidia-smi`, as the lesson shows it, joins a running GPU job of the local cluster
    (its training step keeps running) and its nodes' stand-in nvidia-smi lists the job's GPUs and its Python
    process. The job waits for a file the test writes, so it is surely running when the step joins it."""
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\nsrun --cpus-per-task=1 python3 -c \"\nimport os, pathlib, time\n"
                      "pathlib.Path('started').write_text(str(os.getpid()))\n"
                      "while not pathlib.Path('release').exists(): time.sleep(0.2)\n\"\n")
    job_id = local_slurm.submit("--gres=gpu:4", "--cpus-per-task=1", "--time=00:05:00", "--output=out.%j",
                                script, cwd=tmp_path)
    started = tmp_path / "started"
    deadline = time.monotonic() + 300  # a wait for the queue, not a timing check: the job starts when a node is free
    while not started.exists() and time.monotonic() < deadline:
        assert local_slurm.job(job_id)["JobState"] in ("PENDING", "RUNNING"), \
            f"job {job_id} ended before its training step wrote `started`: {local_slurm.job(job_id)}"
        time.sleep(0.5)
    assert started.exists(), f"job {job_id} did not start its step within 300 s: {local_slurm.job(job_id)}"
    command = lesson_command("srun --overlap --jobid").replace("<id>", job_id).split()
    assert command[:4] == ["srun", "--overlap", "--jobid", job_id], f"the lesson's command is {command}"
    done = slurm.in_job(job_id, command[4:])
    (tmp_path / "release").write_text("")
    assert done.returncode == 0, f"`{' '.join(command)}` failed: {done.stderr.strip()}"
    pid = started.read_text().strip()
    assert "stand-in" in done.stdout and f"job {job_id}" in done.stdout, f"not the stand-in's listing:\n{done.stdout}"
    assert re.search(r"^\|\s+0\s+stand-in", done.stdout, re.M), f"GPU 0 of the job is not listed:\n{done.stdout}"
    assert re.search(rf"^\|\s+{pid}\s+\S*python3", done.stdout, re.M), \
        f"the job's Python process {pid} is not listed:\n{done.stdout}"
    record = local_slurm.wait(job_id, timeout_s=300)
    assert record["JobState"] == "COMPLETED", f"the job did not complete after the monitoring step: {record}"
