"""Exercise 5: one training spread over many GPUs and two nodes with DistributedDataParallel (DDP).

What the harness knows about it, by concern:
* `runs`: train.py and train_ddp.py run on this machine (torchrun_jsc --standalone, offline, the reporter on);
* `checks`: the checks, as functions that return problems (tests/test_ddp.py runs each one on the course's files and
  on deliberately broken copies);
* `cluster`: the cluster job `ddp` (slurm/ddp.sbatch on two nodes, and its one-GPU baseline for the scaling
  efficiency): its login-node step and its verdict;
* `fixtures`: the pytest fixtures (loaded as a pytest plugin with this package).
"""
from __future__ import annotations

from harness.exercises import BenchPart, ClusterJob, Exercise
from harness.exercises.ddp.cluster import BASELINE, check_ddp_job, prepare_ddp

EXERCISE = Exercise(
    key="ddp", number=5, title="distribute the work (DDP on many GPUs and two nodes)", day=2, lesson="book/ddp.md",
    programs=("train.py", "train_ddp.py"), tests=("tests/test_ddp.py",),
    bench_parts=(BenchPart("ddp-scaling", "harness.exercises.ddp.bench"),),
    cluster_jobs=(ClusterJob(name="ddp", sbatch="ddp.sbatch", programs=("pack.py", "datasets.py", "train.py",
                                                                        "train_ddp.py"),
                             check=check_ddp_job, gpus=True, needs_venv=True, prepare=prepare_ddp,
                             settings={"backend": (str, "nccl"), "standin_per_breed": (int, 16),
                                       "packed_dir": (str, "")},
                             figures={"pictures_per_s": "higher", "train_seconds": "lower", "efficiency": "higher",
                                      "baseline_pictures_per_s": "higher"},
                             baseline=BASELINE),),
)
