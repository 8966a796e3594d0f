"""Exercise 5's cluster job `ddp`: slurm/ddp.sbatch on two nodes. Its login-node step packs the pictures (stand-ins
on the test cluster, the real Pets that exercise 2b downloaded elsewhere) with the staged pack.py; its verdict reads
the processes' reports (torch.distributed's rank, world size and backend, torch.save calls, nodes) and rank 0's log.
Its baseline (ClusterJob.baseline) is the same script on one node with one GPU, submitted with it: one training
process, whose pictures/s give the job's scaling efficiency.
"""
from __future__ import annotations

from pathlib import Path

from harness import packing, slurm
from harness.exercises.cats import site_pictures
from harness.exercises.ddp.checks import learning, lifecycle_problems, world_problems, writer_problems
from harness.exercises.ddp.runs import LOG, read_log
from harness.report import cuda_standin_env, unseen_gpu_problems

# The baseline's command-line overrides of ddp.sbatch's #SBATCH lines: the script starts one process per GPU the job
# got (SLURM_JOB_GPUS) on each of SLURM_NNODES nodes, so this runs one process, measured as the job is
BASELINE = ("--nodes=1", "--gres=gpu:1")


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
    scaling, baseline = efficiency(result.baseline, figures.get("pictures_per_s"), len(workers))
    figures = {"world_size": len(workers), "backend": result.settings["backend"], **figures, **scaling}
    return figures, problems + fell + baseline


def efficiency(baseline, rate: float | None, world: int) -> tuple[dict, list[str]]:
    """The scaling efficiency: the job's pictures/s (`rate`, of `world` processes) over `world` times the pictures/s
    of its one-process baseline run (a JobResult), both counted alike from rank 0's log (all pictures over all
    seconds, `learning`). 1 is perfect; it falls where the processes wait for each other or share what they need.
    A baseline that failed is one line (its state and cause) and no efficiency; judged without one, neither."""
    if baseline is None:
        return {}, []
    job, runs = baseline.job, f"the one-GPU baseline (job {baseline.job.job_id}, ddp.sbatch {' '.join(BASELINE)})"
    ended = slurm.end_problems(job, runs)
    if ended:
        return {}, [f"{'; '.join(ended)}; without it there is no efficiency (its files: {baseline.workdir})"]
    workers = [r for r in baseline.reports if r.program == "train_ddp.py"]
    own, _ = learning(read_log(baseline.workdir / LOG))
    single = own.get("pictures_per_s")
    if len(workers) != 1:
        return {}, [f"{runs} ran {len(workers)} training processes, not one: ddp.sbatch must start one per GPU the "
                    "job got on a node (the entries of SLURM_JOB_GPUS), on SLURM_NNODES nodes"]
    if not single:
        return {}, [f"{runs} left no pictures/s: its {LOG} in {baseline.workdir} is empty or missing"]
    figures = {"baseline_pictures_per_s": single}
    if rate and world:
        figures["efficiency"] = round(rate / (world * single), 3)
    return figures, []

