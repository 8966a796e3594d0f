"""Exercise 1: the matrix scripts run on a CPU and compute the right product."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

TENSOR = re.compile(r"tensor\((.*?)\)", re.DOTALL)
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)


def printed_matrices(stdout: str) -> list[torch.Tensor]:
    """Every `tensor([...])` the script printed, as float64 matrices."""
    matrices = []
    for body in TENSOR.findall(stdout):
        rows = [[float(x) for x in NUMBER.findall(row)] for row in re.findall(r"\[([^\[\]]*)\]", body)]
        matrices.append(torch.tensor(rows, dtype=torch.float64))
    return matrices


def test_login_node_product_matches_the_printed_matrices(target_dir: Path) -> None:
    done = run(target_dir / "matrix.py")
    assert done.returncode == 0, done.stderr[-2000:]
    matrices = printed_matrices(done.stdout)
    assert [tuple(m.shape) for m in matrices] == [(3, 3)] * 3, f"expected three 3x3 matrices, got:\n{done.stdout}"
    first, second, product = matrices
    # Printed with 4 decimals: the reference from the rounded inputs is good to about 1e-3.
    torch.testing.assert_close(product, first @ second, atol=5e-3, rtol=1e-3)


def test_login_node_matrices_are_random(target_dir: Path) -> None:
    runs = [printed_matrices(run(target_dir / "matrix.py").stdout) for _ in range(2)]
    assert all(len(r) == 3 for r in runs), "the script printed no matrices"
    assert not torch.equal(runs[0][0], runs[1][0]), "two runs printed the same first matrix: use torch.randn"


def report(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def test_gpu_version_runs_on_the_cpu_and_checks_its_result(target_dir: Path) -> None:
    done = run(target_dir / "matrix_gpu.py", "--size", "384", "--repeats", "3")
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    lines = report(done.stdout)
    assert lines["device"] == "cpu"
    assert lines["check"] == "passed"
    assert float(lines["max relative error"].split()[0]) <= 1e-4
    assert float(lines["TFLOP/s"]) > 0
    assert lines["size"].startswith("384x384")


def test_gpu_version_without_tf32_keeps_float32(target_dir: Path) -> None:
    done = run(target_dir / "matrix_gpu.py", "--size", "128", "--repeats", "2", "--no-tf32")
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "precision: float32" in done.stdout and "check: passed" in done.stdout


def test_gpu_version_rejects_a_bad_size_in_one_line(target_dir: Path) -> None:
    done = run(target_dir / "matrix_gpu.py", "--size", "0")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--size" in lines[0] and "Traceback" not in done.stderr, done.stderr
