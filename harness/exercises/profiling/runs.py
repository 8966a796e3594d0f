"""Exercise 7's local runs: profile_train.py on the Mini-Pets stand-ins, offline, as on a compute node."""
from __future__ import annotations

import sys
from pathlib import Path

from harness import minipets
from harness.offline import Ran, program_env, run_program

PER_BREED = 9  # 37 breeds x 9 = 333 pictures: the 10 steps of 32 pictures the program trains (STEPS x BATCH)
RUN_TIMEOUT_S = 300
# (loader, precision) of the runs the checks read: the start, the fix, and the fix with mixed precision
RUNS = (("jpeg", "fp32"), ("preloaded", "fp32"), ("preloaded", "bf16"))
KNOBS = ("PETS_IMAGES", "LOADER", "PRECISION", "STEPS", "BATCH")  # profile_train.py's own environment variables


def write_pictures(folder: Path) -> Path:
    minipets.write_images(folder, per_breed=PER_BREED)
    return folder


def run_profile(script: Path, images: Path, workdir: Path, loader: str, precision: str = "fp32",
                **knobs: str) -> Ran:
    """`LOADER=<loader> PRECISION=<precision> python profile_train.py` in `workdir`, offline, one math thread (two
    processes share two cores; threads spinning for each other would only add noise)."""
    env = program_env(KNOBS, PETS_IMAGES=str(images), LOADER=loader, PRECISION=precision, OMP_NUM_THREADS="1",
                      **knobs)
    return run_program([sys.executable, str(script)], cwd=workdir, env=env, offline=True, timeout=RUN_TIMEOUT_S)
