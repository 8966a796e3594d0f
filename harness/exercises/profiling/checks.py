"""Exercise 7's checks, each a function that returns problems in the course's words. They read the profiler's trace
(harness/exercises/profiling/trace.py), never the program's own printout of times.

Why shares and not speeds: the question is "what does a step wait for?". The DataLoader's share of a step is a
ratio of two times measured in the same process, one after the other on the same thread (with `num_workers=0` the
loader decodes in that thread; with workers it waits there for them), so a CPU hog that takes cycles from the
process slows both parts alike and leaves the share about where it was; a wall-clock speed would halve.
"""
from __future__ import annotations

import re
from pathlib import Path

from harness.exercises.profiling.trace import StepTimes, TraceError, step_times
from harness.failures import why_failed

PROGRAM = "profile_train.py"
# The start is data-bound when the loader takes more of a step than everything else together (share > 1/2: then
# it is the largest part, whatever the rest is split into). Measured on Mini-Pets (the median step's share, see
# trace.StepTimes.loader_share): 0.84-0.86 on one thread of a shared two-core machine, 0.89 in the local cluster's
# job: odds of 5 : 1 or more, so a hog would have to slow the model's part five times more than the decoding, both
# plain CPU work of the same thread, to cross the bar.
DATA_BOUND = 0.5
# A fix makes the loader a small part: at most a quarter of the step (odds 1 : 3). Measured after preloading:
# 0.01 here, 0.04 in the local cluster's job, 6 to 25 times below the bar. One DataLoader worker decoding beside
# the training instead still leaves the step waiting for it: 0.78 (the worker decodes slower than the model trains).
FIXED_MAX = 0.25
# The same pictures in the same order through the same start weights give the same losses, bit for bit, on one
# thread of the same machine; the program prints them with 6 decimals, so equal prints differ by 0.
SAME_LOSS = 1e-6
# bf16 keeps 8 significant bits: a unit roundoff of 2^-8. Autocast computes the loss in float32 from bf16 layers,
# so each step's loss may differ from float32's by that relative amount, and each earlier step's update adds at most
# as much again to the weights' difference: (step + 1) x 2^-8, relative.
BF16_UNIT = 2.0 ** -8
LOSS_LINE = re.compile(r"^step (\d+): loss ([-+\d.eE]+|nan|inf)\b", re.MULTILINE)


def trace_path(workdir: Path, loader: str, precision: str = "fp32") -> Path:
    """Where the program writes the trace of one run (its working directory, traces/<loader>-<precision>.json)."""
    return Path(workdir) / "traces" / f"{loader}-{precision}.json"


def read_trace(ran, workdir: Path, loader: str, precision: str = "fp32") -> tuple[StepTimes | None, list[str]]:
    """The run's profiled steps, or why there are none: the program failed, wrote no trace, or a trace without
    steps."""
    if ran is not None and ran.returncode != 0:
        return None, [why_failed(PROGRAM, ran.returncode, ran.stderr, ran.stdout)]
    path = trace_path(workdir, loader, precision)
    if not path.is_file():
        return None, [f"LOADER={loader} wrote no trace {path.parent.name}/{path.name}: the profiler writes it when "
                      "its active steps end (on_trace_ready=... export_chrome_trace); run at least STEPS=4 steps"]
    try:
        return step_times(path), []
    except TraceError as error:
        return None, [str(error)]


def start_problems(times: StepTimes) -> list[str]:
    """The start (LOADER=jpeg) waits for its data: the DataLoader is the largest share of a step."""
    if times.loader_share <= DATA_BOUND:
        return [f"the trace of LOADER=jpeg shows the DataLoader at {times.loader_share:.0%} of a step, not over "
                f"{DATA_BOUND:.0%}: the start should be data-bound (one process decoding every picture every step)"]
    return []


def fix_problems(start: StepTimes, fixed: StepTimes) -> list[str]:
    """The fix (LOADER=preloaded) leaves the step little to wait for: its loader share falls to FIXED_MAX or less."""
    if fixed.loader_share > FIXED_MAX:
        return [f"after the fix the trace still shows the DataLoader at {fixed.loader_share:.0%} of a step (it was "
                f"{start.loader_share:.0%}; at most {FIXED_MAX:.0%} is wanted): preload() must prepare every picture "
                "once, before the training, so that a step only picks tensors"]
    return []


def losses(stdout: str) -> dict[int, float]:
    """`step N: loss X` lines of a run, by step."""
    return {int(step): float(value) for step, value in LOSS_LINE.findall(stdout)}


def first_step_off(want: dict[int, float], got: dict[int, float], allowed) -> int | None:
    """The first step whose loss in `got` is not within `allowed(step)` of its loss in `want` (a NaN never is);
    None when every step's is."""
    return next((step for step in sorted(want) if not abs(got[step] - want[step]) <= allowed(step)), None)


def same_training_problems(start_out: str, fixed_out: str) -> list[str]:
    """The fix trains on the same pictures in the same order: every step's loss is the start's (SAME_LOSS)."""
    want, got = losses(start_out), losses(fixed_out)
    if not want or set(want) != set(got):
        return [f"the runs printed losses for steps {sorted(want)} and {sorted(got)}: both should train the same "
                "steps (`step N: loss X` lines)"]
    step = first_step_off(want, got, lambda step: SAME_LOSS)
    return [] if step is None else [
        f"step {step}: loss {got[step]:.6f} after the fix, {want[step]:.6f} before: preload() must give the very "
        "pictures JpegFolder gives (prepared(path), uint8) with their labels, in the same order"]


def bf16_problems(fp32_out: str, bf16_out: str) -> list[str]:
    """Mixed precision's accuracy check over a few steps: bf16 losses follow float32's within bf16's rounding."""
    want, got = losses(fp32_out), losses(bf16_out)
    if not want or set(want) != set(got):
        return [f"the float32 and bf16 runs printed losses for steps {sorted(want)} and {sorted(got)}"]

    def rounding(step: int) -> float:  # what bf16's rounding explains by this step (BF16_UNIT)
        return (step + 1) * BF16_UNIT * abs(want[step])

    step = first_step_off(want, got, rounding)
    return [] if step is None else [
        f"step {step}: bf16 loss {got[step]:.6f}, float32 {want[step]:.6f}: off by "
        f"{abs(got[step] - want[step]):.2g}, bf16's rounding explains {rounding(step):.2g}"]
