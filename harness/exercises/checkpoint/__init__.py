"""Exercise 6: survive the time limit. train_ckpt.py (exercise 5's train_ddp.py that saves a checkpoint on Slurm's
early signal and resumes from it) and slurm/checkpoint.sbatch (the signal, the trap, srun in the background, a
follow-up job with --dependency=afterany).

The package, by concern: `runs` starts and interrupts the training as Slurm would, `checks` judges what a run left
(each check returns problems), `fixtures` makes the runs once per test run, `cluster` prepares and judges the cluster
job, `bench` is its part of `python -m bench`. The pictures and the float64 comparison are exercise 5's
(harness/exercises/ddp/).
"""
from harness.exercises import BenchPart, ClusterJob, Exercise
from harness.exercises.checkpoint.cluster import check_checkpoint_job, prepare_checkpoint
from harness.exercises.checkpoint.fixtures import (checkpoint_killed, checkpoint_reference,  # noqa: F401 (fixtures)
                                                   checkpoint_resumed, checkpoint_uninterrupted)

EXERCISE = Exercise(
    key="checkpoint", number=6, title="survive the time limit (checkpoints and follow-up jobs)", day=3,
    lesson="book/checkpoint.md", programs=("train_ckpt.py",), tests=("tests/test_checkpoint.py",),
    cluster_jobs=(ClusterJob(name="checkpoint", sbatch="checkpoint.sbatch",
                             programs=("pack.py", "datasets.py", "train.py", "train_ddp.py", "train_ckpt.py"),
                             check=check_checkpoint_job, gpus=True, needs_venv=True, prepare=prepare_checkpoint,
                             settings={"standin_per_breed": (int, 16), "packed_dir": (str, "")},
                             follow_ups=5),),
    bench_parts=(BenchPart("checkpoint-overhead", "harness.exercises.checkpoint.bench", {
        "saves": (int, 10, "checkpoints saved and timed (default 10)")}),),
)
