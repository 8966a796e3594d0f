"""Exercise 5's cluster job `ddp`: slurm/ddp.sbatch on two nodes. Its login-node step packs the pictures (stand-ins
on the test cluster, the real Pets that exercise 2b downloaded elsewhere) with the staged pack.py; its verdict reads
the processes' reports (torch.distributed's rank, world size and backend, torch.save calls, nodes) and rank 0's log.
"""
from __future__ import annotations

from pathlib import Path

from harness import packing
from harness.exercises.cats import site_pictures
from harness.exercises.ddp.checks import learning, lifecycle_problems, world_problems, writer_problems
from harness.exercises.ddp.runs import LOG, read_log
from harness.report import cuda_standin_env, unseen_gpu_problems


def prepare_ddp(run, workdir: Path, job: str = "ddp") -> dict[str, str]:
    """The login-node step (harness.packing): the pictures packed into pets.h5 by the course's own pack.py staged
    beside the script; the job reads it through DATA. `job`: another job that trains on pets.h5 (exercise 6's)."""
    _, packed = packing.prepare(run, workdir, run.site.job(job).values, lambda: site_pictures(run), ("pets.h5",),
                                need_images=False)
    return {"DATA": str(packed / "pets.h5"), **cuda_standin_env(run.site.gpus_real)}


def check_ddp_job(result) -> tuple[dict, list[str]]:
    """The processes of both nodes made one process group (nodes x GPUs per node, every rank, the site's backend),
    rank 0 alone saved the model and kept the log, and the loss fell. Figures: pictures/s, seconds, final loss."""
    workers = [r for r in result.reports if r.program == "train_ddp.py"]
    nodes = sorted({r.node for r in workers})
    per_node = result.site.gpus_per_node
    world = max(len(nodes), 1) * per_node
    problems = unseen_gpu_problems(workers) + world_problems(workers, world, result.settings["backend"])
    if len(nodes) < 2:
        problems.append(f"the training ran on {len(nodes)} node(s) ({', '.join(nodes) or 'none'}); the job asks for "
                        "two (--nodes=2, one torchrun per node with --ntasks-per-node=1)")
    per_node_seen = {node: sum(1 for r in workers if r.node == node) for node in nodes}
    short = {node: n for node, n in per_node_seen.items() if n != per_node}
    if short:
        node, n = next(iter(short.items()))
        problems.append(f"node {node} ran {n} training process(es), not one per GPU ({per_node}): "
                        "--nproc_per_node: the entries of SLURM_JOB_GPUS, the GPUs the job got on a node")
    problems += lifecycle_problems(workers) + writer_problems(workers, {}, result.workdir)
    figures, fell = learning(read_log(result.workdir / LOG))
    figures = {"world_size": len(workers), "backend": result.settings["backend"], **figures}
    return figures, problems + fell

