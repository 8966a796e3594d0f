"""Exercise 1: the matrix scripts run on a CPU and compute the right product (each run takes a second or two).

The checks are functions of harness/exercises/matrix.py that return problems in the course's words; each is also
run on a deliberately broken copy of the solution, which it must catch with its own message.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import localcluster, references, sites
from harness.cluster_run import judge
from harness.exercises import ROOT, matrix
from harness.exercises.matrix import EXERCISE
from harness.job_records import finished, write_report
from harness.localcluster import ACCOUNT, PARTITION, RESERVATION, LocalCluster, submit_env

from broken_copies import broken_solution
from exercise_scripts import batch_script_test

# Broken copies of the solutions: (file, the solution's line, the mistake, words the check must say)
BROKEN = {
    "element-wise product": ("matrix.py", "product = torch.matmul(first, second)", "product = first * second",
                             "element-wise product"),
    "product of other matrices": ("matrix.py", "product = torch.matmul(first, second)",
                                  "product = torch.matmul(second, first)", "not the matrix product"),
    "the same matrices every run": ("matrix.py", "first = torch.randn(3, 3)",
                                    "torch.manual_seed(0)\nfirst = torch.randn(3, 3)", "the same first matrix"),
    "uniform instead of normal numbers": ("matrix.py", "torch.randn(3, 3)", "torch.rand(3, 3)",  # both matrices
                                          "no negative number"),
    "the product in the other order": ("matrix_gpu.py", "product = first_there @ second_there",
                                       "product = second_there @ first_there", "own check says `FAILED`"),
    "a student's exception": ("matrix_gpu.py", "product = first_there @ second_there",
                              "product = first_there @ second_there[:5]", "failed at matrix_gpu.py:"),
}


def start(script: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def broken_copy(folder: Path, course_root: Path, mistake: str) -> Path:
    name, old, new, _ = BROKEN[mistake]
    return broken_solution(course_root, name, folder, (old, new))


@pytest.fixture(scope="module")
def runs(target_dir: Path) -> dict:
    """Every run the checks of the target need, started at once: each is a second or two, mostly torch's import, so
    together they take hardly longer than one."""
    started = {"first": start(target_dir / "matrix.py"), "second": start(target_dir / "matrix.py"),
               "gpu": start(target_dir / "matrix_gpu.py", SIZE="256")}
    return {name: finish(process) for name, process in started.items()}


@pytest.fixture(scope="module")
def broken_runs(course_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each broken copy, run as its check needs (matrix.py twice: its check compares two runs), all at once."""
    root = tmp_path_factory.mktemp("matrix-broken")
    started = {}
    for number, mistake in enumerate(BROKEN):
        script = broken_copy(root / str(number), course_root, mistake)
        for run in ("first", "second") if script.name == "matrix.py" else ("gpu",):
            started[(mistake, run)] = start(script, SIZE="64")
    return {name: finish(process) for name, process in started.items()}


def test_login_node_product_matches_the_printed_matrices_and_differs_each_run(runs: dict) -> None:
    problems = matrix.login_problems(runs["first"], runs["second"])
    assert not problems, problems[0]
    (a, ua), (b, ub), (c, uc) = matrix.printed_matrices(runs["first"].stdout)
    error, allowed = matrix.product_error(a, ua, b, ub, c, uc)
    print(f"matrix.py: largest element error {error:.1e}, rounding of the printed digits allows {allowed:.1e}")


def test_gpu_version_runs_on_the_cpu_and_checks_its_result(runs: dict) -> None:
    problems = matrix.gpu_problems(runs["gpu"], expect_device="cpu")
    assert not problems, problems[0]
    print("matrix_gpu.py:", matrix.figures_of(runs["gpu"].stdout))


@pytest.mark.broken_copy
@pytest.mark.parametrize("mistake", list(BROKEN))
def test_checks_catch_a_broken_copy(broken_runs: dict, mistake: str) -> None:
    """Each check bites: a copy of the solution with one mistake is caught, with the words that name it."""
    if (mistake, "gpu") in broken_runs:
        problems = matrix.gpu_problems(broken_runs[mistake, "gpu"], expect_device="cpu")
    else:
        problems = matrix.login_problems(broken_runs[mistake, "first"], broken_runs[mistake, "second"])
    words = BROKEN[mistake][3]
    assert problems and words in problems[0], f"{mistake}: the checks found {problems}"
    print(f"{mistake}: {problems[0]}")


def test_a_tiny_speed_is_printed_as_a_positive_figure() -> None:
    """matrix_gpu.py prints TFLOP/s with 3 significant digits, so a slow CPU's 0.0004 never reads as 0.000."""
    for printed, value in (("0.000412", 0.000412), ("4.12e-05", 4.12e-05), ("0.000", 0.0)):  # 0.000: the old print
        read = matrix.figures_of(f"TFLOP/s: {printed}\n")["tflops"]
        assert read == value, f"`TFLOP/s: {printed}` was read as {read}"


test_the_batch_script_passes_the_course_checker = batch_script_test(EXERCISE)


@pytest.mark.broken_copy  # a check of the cluster verdict, from recorded reports: not a student's self-check
def test_matrix_verdict_wants_a_gpu_where_the_site_has_real_ones(tmp_path):
    job = EXERCISE.cluster_jobs[0]
    jureca, local = sites.resolve("jureca-dc"), sites.resolve("local")
    (tmp_path / "output.5").write_text("device: cpu\ncheck: passed (largest relative error 1e-07)\nTFLOP/s: 0.006\n")
    write_report(tmp_path, "matrix_gpu.py", cores=1)
    on_jureca = judge(finished("matrix", "5"), tmp_path, job, jureca)
    assert on_jureca.problems == ["ran on the CPU, but jureca-dc has GPUs: torch saw no CUDA device"]
    assert judge(finished("matrix", "5"), tmp_path, job, local).passed
    (tmp_path / "output.5").write_text("device: NVIDIA A100-SXM4-40GB\ncheck: passed\nTFLOP/s: 150.2\n")
    verdict = judge(finished("matrix", "5"), tmp_path, job, jureca)
    assert verdict.passed and verdict.figures["tflops"] == 150.2 and verdict.figures["gpus"] == 4


@pytest.mark.slurm
def test_course_matrix_script_runs_unchanged(local_slurm: LocalCluster, course_root: Path, tmp_path: Path) -> None:
    """slurm/jureca-matrix.sbatch as the book shows it; only the command line adapts it to this machine."""
    shutil.copy(course_root / "solutions" / "matrix_gpu.py", tmp_path)
    record = local_slurm.run(f"--chdir={tmp_path}", "--time=00:05:00", course_root / "slurm" / "jureca-matrix.sbatch",
                             env={**submit_env(), "SIZE": "256"})
    job_id = record["JobId"]
    error = (tmp_path / f"error.{job_id}").read_text() if (tmp_path / f"error.{job_id}").exists() else ""
    assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", error
    assert record["JobName"] == "matrix-multiplication"
    assert record["Reservation"] == RESERVATION and record["Partition"] == PARTITION and record["Account"] == ACCOUNT
    output = (tmp_path / f"output.{job_id}").read_text()
    assert "device: cpu" in output  # the stand-in GPUs are /dev/null: torch rightly finds no CUDA device
    assert "check: passed" in output


# --- the reference figure of the cluster job, on the local cluster -----------------------------------------------

def slowed_matrix(tmp_path: Path, tflops: float, size: int) -> Path:
    """solutions/matrix_gpu.py with each timed product padded by a sleep to last as long as it would at `tflops`:
    the program's own TFLOP/s line then says `tflops` (or less, on a machine slower than that), whatever this
    machine's speed; its product and its check stay the real ones."""
    original = (ROOT / "solutions" / "matrix_gpu.py").read_text()
    period = 2 * size ** 3 / (tflops * 1e12)  # seconds one product takes at `tflops`
    loop = "for _ in range(10):\n    first_there @ second_there\n"
    assert loop in original, "solutions/matrix_gpu.py has no timed loop of ten products to slow down"
    padded = ("for _ in range(10):\n    begun = time.perf_counter()\n    first_there @ second_there\n"
              f"    time.sleep(max(0.0, {period!r} - (time.perf_counter() - begun)))  # deliberately slowed\n")
    (tmp_path / "matrix_gpu.py").write_text(original.replace(loop, padded))
    return tmp_path / "matrix_gpu.py"


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.broken_copy
def test_a_figure_far_below_its_reference_fails_the_job_with_one_line(local_slurm: LocalCluster,
                                                                       tmp_path: Path) -> None:
    """The local profile holds matrix's TFLOP/s to a reference (slurm/sites/local.toml, [jobs.matrix.reference]).
    The course's matrix_gpu.py passes it; a copy slowed to a hundredth of the reference fails with the one-line
    figure message and nothing else. The profile's tolerance allows a twentieth (its comment says why), so the copy
    is five times beyond the limit, and its figure is set by its sleeps, not by this CPU's speed or load."""
    local_site = localcluster.site()
    held = local_site.job("matrix").references.get("tflops")
    assert held is not None and held.better == "higher", "slurm/sites/local.toml holds no TFLOP/s reference for matrix"
    assert held.value / 100 < held.limit / 2, f"a hundredth of the reference must be far outside its tolerance: {held}"
    verdicts, lines = localcluster.run_jobs(local_site, ["matrix"], tmp_path / "as-is")
    within = verdicts["matrix"]
    assert within.passed, f"the course's own matrix_gpu.py should hold its reference: {within.report()}"
    size = int(local_site.job("matrix").env["SIZE"])
    slowed = slowed_matrix(tmp_path, held.value / 100, size)
    verdicts, lines = localcluster.run_jobs(local_site, ["matrix"], tmp_path / "slowed", {"matrix_gpu.py": slowed})
    slow = verdicts["matrix"]
    assert slow.state == "COMPLETED" and slow.figures["check"] == "passed", slow.report()
    figure = slow.figures["tflops"]
    assert figure < held.limit, f"the slowed copy reported {figure} TFLOP/s, not below {held.limit}: {slow.report()}"
    assert slow.problems == [f"figure tflops = {references.number(figure)} is below its allowed range: reference "
                             f"{references.number(held.value)}, tolerance {references.number(held.tolerance)} "
                             f"(allowed: at least {references.number(held.limit)}; higher is better), from "
                             f"jobs.matrix.reference of local.toml"], slow.report()
