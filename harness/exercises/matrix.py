"""Exercise 1: multiply matrices, on the login node (matrix.py) and on a GPU node through Slurm (matrix_gpu.py)."""
from __future__ import annotations

import re

from harness.exercises import ClusterJob, Exercise


def check_matrix_job(result) -> tuple[dict, list[str]]:
    """The GPU version's own lines: the device it ran on, the CPU check, the speed."""
    device = re.findall(r"^device: (.+)$", result.output, re.MULTILINE)
    check = re.findall(r"^check: (\S+)", result.output, re.MULTILINE)
    tflops = re.findall(r"^TFLOP/s: ([\d.]+)", result.output, re.MULTILINE)
    figures = {"device": device[-1].strip() if device else None, "check": check[-1] if check else None,
               "tflops": float(tflops[-1]) if tflops else None}
    problems = []
    if figures["device"] is None:
        problems.append("no `device: <name>` line in the output")
    elif result.site.gpus_real and figures["device"].lower() == "cpu":
        problems.append(f"ran on the CPU, but {result.site.name} has GPUs: torch saw no CUDA device")
    if figures["check"] != "passed":
        problems.append(f"the GPU-vs-CPU check did not pass (check: {figures['check']})")
    if figures["tflops"] is None:
        problems.append("no `TFLOP/s:` figure in the output")
    return figures, problems


EXERCISE = Exercise(
    key="matrix", number=1, title="matrix multiply", day=1, lesson="book/matrix.md",
    programs=("matrix.py", "matrix_gpu.py"), tests=("tests/test_matrix.py",),
    cluster_jobs=(ClusterJob(name="matrix", sbatch="jureca-matrix.sbatch", programs=("matrix_gpu.py",),
                             check=check_matrix_job, cost="1 node, under a minute"),),
)
