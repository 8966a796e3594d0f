"""The cluster job `checkpoint`: slurm/checkpoint.sbatch and its follow-up jobs (ClusterJob.follow_ups, each submitted
with --dependency=afterany on the one before), with a time limit shorter than the training.

Its login-node step packs the pictures as exercise 5's does. Its verdict reads the chain: every job's runs in
accounting (`sacct --duplicates`: a job that was requeued keeps its id and shows each run), the reports of the
training processes (which job each ran in), rank 0's log (every step once) and the last checkpoint (the end).
"""
from __future__ import annotations

from collections import Counter
from itertools import accumulate
from pathlib import Path

from harness import slurm
from harness.exercises.ddp.checks import learning
from harness.exercises.ddp.cluster import prepare_ddp
from harness.exercises.ddp.runs import LOG, read_log
from harness.exercises.checkpoint.checks import load_checkpoint
from harness.exercises.checkpoint.runs import CHECKPOINT, PROGRAM
from harness.report import Report


def prepare_checkpoint(run, workdir: Path) -> dict[str, str]:
    """The pictures packed into pets.h5 by the staged pack.py, as for exercise 5's job (its settings here)."""
    return prepare_ddp(run, workdir, "checkpoint")


def jobs_that_trained(workers: list[Report]) -> list[str]:
    """The ids of the jobs whose training processes reported, in the order they started."""
    found: dict[str, float] = {}
    for report in workers:
        job_id = report.slurm.get("job_id", "")
        if job_id:
            found[job_id] = min(found.get(job_id, report.started), report.started)
    return sorted(found, key=found.get)


def starts_in_log(rows: list[tuple]) -> list[int]:
    """The steps each start of the training logged: its seconds count from its own start, so they fall at a resume."""
    starts: list[int] = []
    for n, row in enumerate(rows):
        if n == 0 or row[2] < rows[n - 1][2]:
            starts.append(0)
        starts[-1] += 1
    return starts


def chain_problems(rows: list[tuple], epochs: int, chain: list[str], final: dict | None) -> list[str]:
    """The training was stopped and resumed (its log shows more than one start that trained), every epoch has the
    same number of steps (none trained twice, none skipped) up to the last, and the last checkpoint says it
    finished."""
    problems = []
    starts = starts_in_log(rows)
    if len(starts) < 2:
        problems.append(f"the training ran in one go in the chain {', '.join(chain)}: it should be stopped by the "
                        "signal before the time limit and resumed by a follow-up job (if it finished before the "
                        "signal, make it longer: EPOCHS in [jobs.checkpoint] env of the site profile)")
    per_epoch = Counter(row[0] for row in rows)
    counts = [per_epoch[epoch] for epoch in range(epochs)]
    if not rows or len(set(counts)) != 1 or counts[0] == 0 or len(rows) != sum(counts):
        usual = max(set(counts), key=counts.count) if counts else 0
        odd = [(epoch, count) for epoch, count in enumerate(counts) if count != usual or count == 0]
        shown = ", ".join(f"epoch {epoch}: {count}" for epoch, count in odd[:3]) + (" ..." if len(odd) > 3 else "")
        problems.append(f"{LOG} has {len(rows)} lines for epochs 0-{epochs - 1}, most of them {usual} steps but "
                        f"{len(odd)} not ({shown}): each epoch should have the same number, each step once (steps "
                        "trained again were lost: a start that ended without saving; see the error files)")
    if final is None or final.get("epoch") != epochs:
        where = "no checkpoint" if final is None else f"epoch {final.get('epoch')} step {final.get('step')}"
        problems.append(f"the last checkpoint holds {where}, not the end of epoch {epochs - 1}: the chain ended "
                        "before the training did (more follow-ups, or a longer time limit)")
    return problems


def check_checkpoint_job(result) -> tuple[dict, list[str]]:
    """The chain trained once through every step across its jobs, resumed where it stopped, and learned."""
    workers = [r for r in result.reports if r.program == PROGRAM]
    chain = [result.job, *result.follow_ups]
    trained_in = jobs_that_trained(workers)
    runs = {job.job_id: slurm.runs(job.job_id) for job in chain}
    rows = read_log(result.workdir / LOG)
    final, _ = load_checkpoint(result.workdir / CHECKPOINT)
    epochs = int(result.site.job("checkpoint").env.get("EPOCHS", 5))
    problems = chain_problems(rows, epochs, [job.job_id for job in chain], final)
    figures, fell = learning(rows)
    starts = starts_in_log(rows)
    seconds = sum(rows[end - 1][2] for end in accumulate(starts))  # each start's last line: its own seconds
    if seconds > 0:  # learning() reads one start's clock; each start of a chain counts from its own
        figures.update(train_seconds=round(seconds, 1), pictures_per_s=round(sum(r[1] for r in rows) / seconds, 1))
    figures = {"jobs": len(chain), "started": len(trained_in), "trained_in": len(starts),
               "runs": sum(len(r) or 1 for r in runs.values()), "steps": len(rows),
               "checkpoint": f"epoch {final['epoch']} step {final['step']}" if final else "none", **figures}
    return figures, problems + fell
