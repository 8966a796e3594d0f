"""Exercise 1: multiply matrices, on the login node (matrix.py) and on a GPU node through Slurm (matrix_gpu.py)."""
from __future__ import annotations

import re

from harness.exercises import ClusterJob, Exercise
from harness.failures import why_failed

TENSOR = re.compile(r"tensor\((.*?)\)", re.DOTALL)
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
FLOAT32_UNIT = 2.0 ** -24  # unit roundoff of the float32 the product is computed in
CHECK_BOUND = 1e-4  # what matrix_gpu.py's own check allows (its comment says why)


def printed_matrices(stdout: str) -> list[tuple[list[list[float]], list[list[float]]]]:
    """Every `tensor([...])` printed: (values, half a unit of each value's last printed digit). torch prints 4
    decimals (or 4 in scientific notation), so a printed value is within that half unit of the true one."""
    matrices = []
    for body in TENSOR.findall(stdout):
        rows = re.findall(r"\[([^\[\]]*)\]", body)
        values = [[float(x) for x in NUMBER.findall(row)] for row in rows]
        halves = [[half_unit(x) for x in NUMBER.findall(row)] for row in rows]
        matrices.append((values, halves))
    return matrices


def half_unit(text: str) -> float:
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def product_error(a, ua, b, ub, c, uc, elementwise: bool = False) -> tuple[float, float]:
    """For the element where the printed result `c` is furthest beyond rounding: |c - a@b| (or |c - a*b|) there,
    and the most that rounding explains there: the printed inputs' half units carried through the sum, the printed
    result's own, and float32's (2 x terms x unit roundoff of each product)."""
    n = len(a)
    found: list[tuple[float, float]] = []
    for i in range(n):
        for j in range(n):
            terms = ([(a[i][j], ua[i][j], b[i][j], ub[i][j])] if elementwise
                     else [(a[i][k], ua[i][k], b[k][j], ub[k][j]) for k in range(n)])
            exact = sum(x * y for x, _, y, _ in terms)
            bound = uc[i][j] + sum(abs(x) * uy + abs(y) * ux + ux * uy + 2 * len(terms) * FLOAT32_UNIT * abs(x * y)
                                   for x, ux, y, uy in terms)
            found.append((abs(c[i][j] - exact), bound))
    return max(found, key=lambda pair: pair[0] - pair[1])


def login_problems(first_run, second_run) -> list[str]:
    """Exercise 1a: matrix.py prints two random 3x3 matrices and their matrix product; two runs differ."""
    if first_run.returncode != 0:
        return [why_failed("matrix.py", first_run.returncode, first_run.stderr, first_run.stdout)]
    matrices = printed_matrices(first_run.stdout)
    shapes = [(len(m), len(m[0]) if m else 0) for m, _ in matrices]
    if shapes != [(3, 3)] * 3:
        return [f"matrix.py printed {len(matrices)} matrices of sizes {shapes}: it should print the two random 3x3 "
                "matrices and then their product (print each tensor)"]
    (a, ua), (b, ub), (c, uc) = matrices
    error, allowed = product_error(a, ua, b, ub, c, uc)
    if error > allowed:
        elementwise, allowed_elementwise = product_error(a, ua, b, ub, c, uc, elementwise=True)
        if elementwise <= allowed_elementwise:
            return ["matrix.py printed the element-wise product (first * second): the matrix product is "
                    "torch.matmul(first, second), or first @ second"]
        return [f"matrix.py: the printed result is not the matrix product of the two printed matrices: an element "
                f"is off by {error:.2g}, rounding explains {allowed:.2g} (torch.matmul(first, second))"]
    again = printed_matrices(second_run.stdout)
    if second_run.returncode == 0 and again and again[0][0] == a:
        return ["matrix.py printed the same first matrix in two runs: make random ones with torch.randn(3, 3)"]
    inputs = [x for matrix_, _ in matrices[:2] + again[:2] for row in matrix_ for x in row]
    if len(inputs) == 36 and min(inputs) >= 0:  # 36 normal values are all >= 0 with probability 2^-36 = 1.5e-11
        return ["matrix.py's matrices hold no negative number in two runs: torch.randn draws from the normal "
                "distribution (torch.rand only from 0 to 1)"]
    return []


def figures_of(output: str) -> dict:
    """The GPU version's own lines: the device it ran on, its check and error, the speed."""
    device = re.findall(r"^device: (.+)$", output, re.MULTILINE)
    check = re.findall(r"^check: (\S+)(?: \(largest relative error (\S+)\))?", output, re.MULTILINE)
    tflops = [number(text) for text in re.findall(r"^TFLOP/s: (\S+)", output, re.MULTILINE)]
    return {"device": device[-1].strip() if device else None, "check": check[-1][0] if check else None,
            "error": number(check[-1][1]) if check and check[-1][1] else None,
            "tflops": tflops[-1] if tflops else None}


def gpu_problems(done, expect_device: str) -> list[str]:
    """Exercise 1b run locally: it ran on `expect_device`, its check passed within its bound, it printed a speed."""
    if done.returncode != 0:
        return [why_failed("matrix_gpu.py", done.returncode, done.stderr, done.stdout)]
    figures = figures_of(done.stdout)
    if figures["device"] != expect_device:
        return [f"matrix_gpu.py printed `device: {figures['device']}` on a machine where it should pick "
                f"{expect_device} (torch.cuda.is_available() decides)"]
    if figures["check"] != "passed" or figures["error"] is None or not figures["error"] <= CHECK_BOUND:
        return [f"matrix_gpu.py's own check says `{figures['check']}` (largest relative error {figures['error']}, "
                f"allowed {CHECK_BOUND}): product must be first_there @ second_there, made on the device"]
    if figures["tflops"] is None or not figures["tflops"] > 0:
        return ["matrix_gpu.py printed no positive `TFLOP/s:` figure"]
    return []


def check_matrix_job(result) -> tuple[dict, list[str]]:
    """The GPU version's own lines: the device it ran on, the CPU check, the speed."""
    figures = figures_of(result.output)
    figures.pop("error")
    problems = []
    if figures["device"] is None:
        problems.append("no `device: <name>` line in the output")
    elif result.site.gpus_real and figures["device"].lower() == "cpu":
        problems.append(f"ran on the CPU, but {result.site.name} has GPUs: torch saw no CUDA device")
    if figures["check"] != "passed":
        problems.append(f"the GPU-vs-CPU check did not pass (check: {figures['check']})")
    if figures["tflops"] is None or not figures["tflops"] > 0:
        problems.append("no positive `TFLOP/s:` figure in the output (matrix_gpu.py prints it with 3 digits)")
    return figures, problems


def number(text: str) -> float | None:
    """A printed figure (`0.00612`, `1.72e-05`, `18.9`), None where it is not one."""
    try:
        return float(text)
    except ValueError:
        return None


EXERCISE = Exercise(
    key="matrix", number=1, title="matrix multiply", day=1, lesson="book/matrix.md",
    programs=("matrix.py", "matrix_gpu.py"), tests=("tests/test_matrix.py",), wait_target_s=10.0,
    cluster_jobs=(ClusterJob(name="matrix", sbatch="jureca-matrix.sbatch", programs=("matrix_gpu.py",),
                             check=check_matrix_job, figures={"tflops": "higher"}),),
)
