"""Exercise 1: the matrix scripts run on a CPU and compute the right product (each run takes a second or two)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TENSOR = re.compile(r"tensor\((.*?)\)", re.DOTALL)
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def start(script: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


WRONG = ("product = first_there @ second_there", "product = second_there @ first_there")


@pytest.fixture(scope="module")
def runs(target_dir: Path, course_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every run the checks need, started at once: each is a second or two, mostly torch's import, so together they
    take hardly longer than one. `wrong` is a deliberately broken copy of the solution (see the last test)."""
    source = (course_root / "solutions" / "matrix_gpu.py").read_text()
    wrong = tmp_path_factory.mktemp("wrong") / "matrix_gpu.py"
    wrong.write_text(source.replace(*WRONG))
    started = {"first": start(target_dir / "matrix.py"), "second": start(target_dir / "matrix.py"),
               "gpu": start(target_dir / "matrix_gpu.py", SIZE="256"), "wrong": start(wrong, SIZE="64")}
    return {name: finish(process) for name, process in started.items()} | {"broken": WRONG[0] in source}


def printed_matrices(stdout: str) -> list:
    """Every `tensor([...])` the script printed, as float64 matrices."""
    import torch

    matrices = []
    for body in TENSOR.findall(stdout):
        rows = [[float(x) for x in NUMBER.findall(row)] for row in re.findall(r"\[([^\[\]]*)\]", body)]
        matrices.append(torch.tensor(rows, dtype=torch.float64))
    return matrices


def test_login_node_product_matches_the_printed_matrices_and_differs_each_run(runs: dict) -> None:
    import torch

    first_run, second_run = runs["first"], runs["second"]
    assert first_run.returncode == 0, first_run.stderr[-2000:]
    matrices = printed_matrices(first_run.stdout)
    assert [tuple(m.shape) for m in matrices] == [(3, 3)] * 3, f"expected three 3x3 matrices, got:\n{first_run.stdout}"
    first, second, product = matrices
    # Printed with 4 decimals: the reference from the rounded inputs is good to about 1e-3.
    torch.testing.assert_close(product, first @ second, atol=5e-3, rtol=1e-3)
    again = printed_matrices(second_run.stdout)
    assert again and not torch.equal(again[0], first), "two runs printed the same first matrix: use torch.randn"


def report(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def test_gpu_version_runs_on_the_cpu_and_checks_its_result(runs: dict) -> None:
    done = runs["gpu"]
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    lines = report(done.stdout)
    assert lines["device"] == "cpu"
    assert lines["check"].startswith("passed"), done.stdout
    assert float(lines["check"].split("error ")[1].rstrip(")")) <= 1e-4
    assert float(lines["TFLOP/s"]) > 0


def test_the_scripts_check_catches_a_wrong_product(runs: dict) -> None:
    """The check (shared by exercise and solution) is what tells a student the GPU's answer is right: a
    deliberately broken copy of the solution must fail it."""
    assert runs["broken"], f"the solution no longer computes `{WRONG[0]}`"
    assert "check: FAILED" in runs["wrong"].stdout, runs["wrong"].stdout
