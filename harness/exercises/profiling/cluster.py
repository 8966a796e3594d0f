"""Exercise 7's cluster job `profile`: its login-node step (the pictures it reads) and its verdict, read from the
traces the job wrote (never from its printout of times)."""
from __future__ import annotations

from pathlib import Path

from harness.exercises.profiling import checks
from harness.exercises.profiling.runs import write_pictures
from harness.exercises.profiling.trace import has_gpu_kernels


def prepare_profile(run, workdir: Path) -> dict[str, str]:
    """Stand-in pictures on a site without the real Pets (the test cluster), else the Pets that `python cats.py
    --prefetch` downloaded on the login node (exercise 2b)."""
    if run.site.caches.prepare == "minipets":
        images = workdir / "images"
        run.log(f"writing stand-in pictures to {images}")
        write_pictures(images)
    else:
        from harness.exercises.cats import site_pictures  # where exercise 2 keeps the data set on this site

        images = site_pictures(run)
    return {"PETS_IMAGES": str(images)}


def check_profile_job(result) -> tuple[dict, list[str]]:
    """The start's trace shows a data-bound step, the fix's a step that hardly waits, both on the site's GPU;
    figures: each trace's loader share and mean step, and the speed-ups they imply."""
    traces = {}
    problems: list[str] = []
    for loader, precision in (("jpeg", "fp32"), ("preloaded", "fp32"), ("preloaded", "bf16")):
        times, missing = checks.read_trace(None, result.workdir, loader, precision)
        problems += missing
        if times is not None:
            traces[loader, precision] = times
    figures: dict = {}
    for (loader, precision), times in traces.items():
        figures[f"{loader}_{precision}_loader_share"] = round(times.loader_share, 3)
        figures[f"{loader}_{precision}_step_ms"] = round(times.median_step_ms, 2)
    start, fixed, bf16 = (traces.get(key) for key in (("jpeg", "fp32"), ("preloaded", "fp32"), ("preloaded", "bf16")))
    if start:
        problems += checks.start_problems(start)
    if start and fixed:
        problems += checks.fix_problems(start, fixed)
        figures["speedup_preloaded"] = round(start.median_step_ms / fixed.median_step_ms, 2)
    if fixed and bf16:
        figures["speedup_bf16"] = round(fixed.median_step_ms / bf16.median_step_ms, 2)
    if result.site.gpus_real and start and not has_gpu_kernels(checks.trace_path(result.workdir, "jpeg")):
        problems.append(f"the trace holds no GPU kernel, but {result.site.name} has GPUs: torch saw no CUDA device")
    return figures, problems
