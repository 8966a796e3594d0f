"""Exercise 7: where the time of a training step goes. profile_train.py traces a few steps with torch.profiler;
the start is data-bound on purpose (every picture decoded and scaled every step), the student's preload() fixes it.

The package, by concern:
* `trace.py`: the reader of torch.profiler's Chrome/Perfetto JSON trace (steps and the DataLoader's time in them);
* `checks.py`: the checks, as functions returning problems, with their thresholds and why they hold;
* `runs.py`, `fixtures.py`: the local runs on Mini-Pets stand-ins, and the pytest fixtures sharing them;
* `cluster.py`: the cluster job `profile` (slurm/profile.sbatch): its pictures and its verdict from the traces;
* `bench.py`: its part of `python -m bench`, the steps per second before and after the fix;
* `example.py`: the example traces in book/traces/, written by the solution.
"""
from __future__ import annotations

from harness.exercises import BenchPart, ClusterJob, Exercise
from harness.exercises.profiling.cluster import check_profile_job, prepare_profile
from harness.exercises.profiling.fixtures import profiling_images, profiling_runs  # noqa: F401 (pytest plugin)

EXERCISE = Exercise(
    key="profiling", number=7, title="where the time goes (profiling)", day=3, lesson="book/profiling.md",
    programs=("profile_train.py",), tests=("tests/test_profiling.py",),
    cluster_jobs=(ClusterJob(name="profile", sbatch="profile.sbatch",
                             programs=("profile_train.py", "train.py", "datasets.py"),  # it imports exercise 5's network
                             check=check_profile_job, gpus=True, needs_venv=True, prepare=prepare_profile),),
    bench_parts=(BenchPart("profiling", "harness.exercises.profiling.bench",
                           {"steps": (int, 10, "training steps per run (default 10)")}),),
)
