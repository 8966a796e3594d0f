"""Bench part `profiling` (found through the registry): exercise 7's steps per second before and after its fix,
and with bf16, measured in one run.

solutions/profile_train.py runs three times, one after the other (never at once: they would share the cores),
offline on the Mini-Pets stand-ins, one math thread: LOADER=jpeg (the start: every picture decoded and scaled every
step), LOADER=preloaded (the fix) and LOADER=preloaded PRECISION=bf16. The figures come from the traces the runs
wrote (the mean length of the profiled steps and the DataLoader's share of them), read by the exercise's own trace
reader, as its checks read them; the ratio is what the fix buys here, on this CPU.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from bench.report import Check, Part, Skipped

from harness.exercises import ROOT

RUNS = (("jpeg", "fp32"), ("preloaded", "fp32"), ("preloaded", "bf16"))
TARGET_RATIO = 2.0  # the fix should at least double the steps per second (the start's loader share is over 1/2)


def run(steps: int = 10) -> Part:
    try:
        import torch  # noqa: F401

        from harness.exercises.profiling import checks, runs
        from harness.exercises.profiling.trace import step_times
    except ImportError as error:
        raise Skipped(f"cannot import {error.name} (install requirements.txt into .venv)") from None
    script = ROOT / "solutions" / "profile_train.py"
    if not script.is_file():
        raise Skipped("solutions/profile_train.py is missing")
    part = Part("profiling", f"exercise 7: {steps} training steps of 32 stand-in pictures, 8 of them profiled, "
                "one process, one math thread",
                headers=["loader", "precision", "loader share", "ms per step", "steps/s", "vs jpeg"])
    found = {}
    with tempfile.TemporaryDirectory(prefix="bench-profiling-") as tmp:
        images = runs.write_pictures(Path(tmp) / "images")
        for loader, precision in RUNS:
            workdir = Path(tmp) / f"{loader}-{precision}"
            ran = runs.run_profile(script, images, workdir, loader, precision, STEPS=str(steps))
            times, problems = checks.read_trace(ran, workdir, loader, precision)
            if problems:
                raise Skipped(f"LOADER={loader} PRECISION={precision}: {problems[0]}")
            found[loader, precision] = times
    base = 1000 / found["jpeg", "fp32"].median_step_ms
    for (loader, precision), times in found.items():
        rate = 1000 / times.median_step_ms
        part.rows.append([loader, precision, round(times.loader_share, 3), round(times.median_step_ms, 1),
                          round(rate, 1), round(rate / base, 2)])
    fix = found["jpeg", "fp32"].median_step_ms / found["preloaded", "fp32"].median_step_ms
    bf16 = found["preloaded", "fp32"].median_step_ms / found["preloaded", "bf16"].median_step_ms
    part.checks.append(Check("steps/s after the fix vs the start", round(fix, 2), TARGET_RATIO, unit="x"))
    part.notes.append(f"bf16 vs float32 (both preloaded): {bf16:.2f}x the steps per second on this CPU; "
                      "an A100's tensor cores are another matter: measure there")
    return part
