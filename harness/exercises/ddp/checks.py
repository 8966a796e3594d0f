"""Exercise 5's checks, as functions that return problems: tests/test_ddp.py runs each one on the course's files and
on deliberately broken copies, and the cluster job's verdict (cluster.py) uses the same ones.
"""
from __future__ import annotations

from pathlib import Path

from harness.exercises.ddp.runs import LOG, MODEL, Run
from harness.report import Report

# Training amplifies that rounding step by step: in float32 (unit roundoff 2^-24 = 6e-8) the saved weights of the two
# runs differed by up to 1.4e-4 after 36 steps on one machine (x2.3e3), 1e-5 on another, so no float32 tolerance
# tells rounding from a small mistake on every CPU. The local runs that are compared therefore compute in float64
# (COURSE_FLOAT64=1, set by the harness; the student's file is unchanged), unit roundoff 2^-53 = 1.1e-16. Allowed:
# 1e7 of those, 1.1e-9 on a loss or a weight: over 4,000 times the largest amplification seen in float32 (2.3e3),
# and about 10^7 below what each deliberate mistake of tests/test_ddp.py moves (1e-2 or more; it prints each one).
FLOAT64_ENV = {"COURSE_FLOAT64": "1"}
TOLERANCE = 1e7 * 2.0 ** -53


def dist_of(report: Report) -> dict | None:
    """The process group the process joined, as exercise 5's probe (probe.py) recorded it; None if it joined none."""
    return report.probed.get("dist")


def world_problems(workers: list[Report], world: int, backend: str) -> list[str]:
    """Every rank 0..world-1 joined one process group of `world` processes with `backend`, and none died."""
    problems = [f"rank {r.rank.get('rank', '?')} on {r.node} died: {r.exception}" for r in workers if r.exception]
    joined = [dist_of(r) for r in workers if dist_of(r)]
    if not joined:
        return problems + ["no process joined a process group: call torch.distributed.init_process_group"]
    ranks = sorted(group["rank"] for group in joined)
    if ranks != list(range(world)):
        problems.append(f"the ranks {ranks} joined; a run of {world} processes needs each of 0-{world - 1} once")
    for key, want, words in (("world_size", world, "the processes saw a world size of {seen}, not {want} (nodes x "
                                                     "processes per node)"),
                             ("backend", backend, "the process group used {seen}, not {want}: nccl where there are "
                                                  "GPUs, gloo on CPUs")):
        seen = sorted({group[key] for group in joined})
        if seen != [want]:
            problems.append(words.format(seen=", ".join(map(str, seen)), want=want))
    return problems


def lifecycle_problems(workers: list[Report]) -> list[str]:
    """Every rank joined with a timeout (a rank that dies then ends the others, instead of leaving them waiting in
    the next all-reduce until the job's time limit) and left the process group at the end."""
    joined = [(dist_of(r), r.exception) for r in workers if dist_of(r)]
    untimed = sorted(group["rank"] for group, _ in joined if not group.get("timeout_s"))
    if untimed:
        return [f"train_ddp.py: rank(s) {', '.join(map(str, untimed))} joined the process group without a timeout: "
                "pass init_process_group(..., timeout=datetime.timedelta(minutes=5)), so that a rank that dies ends "
                "the others instead of leaving them waiting until the time limit"]
    stayed = sorted(group["rank"] for group, died in joined if not group.get("destroyed") and not died)
    if stayed:
        return [f"train_ddp.py: rank(s) {', '.join(map(str, stayed))} never left the process group: call "
                "dist.destroy_process_group() at the end"]
    return []


def shard_problems(shards: dict[int, list[list[int]]], count: int, world: int, batch: int) -> list[str]:
    """In every epoch the ranks trained on disjoint shares that together cover the data set (but for fewer than one
    global batch, the rest that drop_last leaves out); and each epoch in another order."""
    if sorted(shards) != list(range(world)):
        return [f"the reports show the DataLoaders of ranks {sorted(shards)}, not of 0-{world - 1}"]
    epochs = {len(lists) for lists in shards.values()}
    if len(epochs) != 1 or epochs == {0}:
        return [f"the ranks passed over their DataLoaders {sorted(epochs)} times; each should once per epoch"]
    problems = []
    for epoch in range(epochs.pop()):
        seen: dict[int, int] = {}
        for rank in range(world):
            for index in shards[rank][epoch]:
                if index in seen and seen[index] != rank:
                    return [f"epoch {epoch}: picture {index} went to rank {seen[index]} and to rank {rank}: each rank "
                            "must get its own share (a DistributedSampler with this rank and the world size)"]
                seen[index] = rank
        left_out = count - len(seen)
        if left_out >= world * batch:
            problems.append(f"epoch {epoch}: the ranks trained on {len(seen)} of {count} pictures; together they "
                            f"must cover the data set (all but fewer than one global batch of {world * batch})")
            break
    if not problems and all(len(lists) > 1 and lists[0] == lists[1] for lists in shards.values()):
        problems.append("every rank trained on its pictures in the same order in epoch 0 and epoch 1: the sampler "
                        "shuffles anew only when it is told the epoch (sampler.set_epoch)")
    return problems


def writer_problems(run_workers: list[Report], written: dict[int, list[str]], workdir: Path) -> list[str]:
    """Rank 0, and only rank 0, saved the model once and wrote the log."""
    problems = []
    saves = [(save.get("rank"), save.get("path", "")) for r in run_workers for save in r.probed.get("saves", [])]
    savers = sorted({rank for rank, _ in saves}, key=str)
    if not saves:
        problems.append(f"no process saved the model (torch.save(..., \"{MODEL}\") on rank 0)")
    elif savers != ["0"]:
        problems.append(f"ranks {', '.join(map(str, savers))} saved the model: every process holds the same one, so "
                        "rank 0 alone saves it")
    elif len(saves) != 1:
        problems.append(f"rank 0 saved {len(saves)} times; once, at the end, is enough")
    log = str((workdir / LOG).resolve())
    writers = sorted(rank for rank, paths in written.items() if any(Path(p).resolve() == Path(log) for p in paths))
    if writers and writers != [0]:
        problems.append(f"ranks {', '.join(map(str, writers))} opened {LOG} for writing: rank 0 alone keeps the log")
    if not (workdir / LOG).is_file():
        problems.append(f"no {LOG} in the working folder: rank 0 writes one line per step")
    return problems


def loss_problems(rows: list[tuple], reference: list[tuple], tolerance: float = TOLERANCE) -> list[str]:
    """The logged loss of every step equals the reference run's within `tolerance`."""
    if not rows:
        return [f"the log {LOG} is empty"]
    if len(rows) != len(reference):
        return [f"the log has {len(rows)} steps, the run of one process with the same global batch {len(reference)}"]
    step = first_step_off(rows, reference, tolerance, pictures=True)
    if step is None:
        return []
    row, ref = rows[step], reference[step]
    if row[1] != ref[1]:
        return [f"step {step} trained on {row[1]} pictures, the single process on {ref[1]}: the log counts the "
                "pictures of all processes"]
    return [f"train_ddp.py: step {step} (epoch {row[0]}) logged the loss {row[3]:.6f}, but one process with the "
            f"same global batch has {ref[3]:.6f} (difference {abs(row[3] - ref[3]):.1e}, allowed {tolerance:.1e}): "
            "the gradients or the logged loss are not averaged over all processes, or a rank trains on other pictures"]


def first_step_off(rows: list[tuple], reference: list[tuple], tolerance: float, *,
                   pictures: bool = False) -> int | None:
    """The first step of a log whose loss differs from the `reference` log's by more than `tolerance` (with
    `pictures`: or that trained on another number of pictures than the reference's); None when none does."""
    return next((step for step, (row, ref) in enumerate(zip(rows, reference))
                 if pictures and row[1] != ref[1] or abs(row[3] - ref[3]) > tolerance), None)


def largest_loss_difference(rows: list[tuple], reference: list[tuple]) -> float:
    return max((abs(a[3] - b[3]) for a, b in zip(rows, reference)), default=0.0)


def weight_problems(two: dict, one: dict, tolerance: float = TOLERANCE) -> tuple[float, list[str]]:
    """The models saved by the DDP run and by one process (state dicts) are the same network with the same weights
    within `tolerance`. Returns the largest difference and the problems."""
    if two.keys() != one.keys():
        extra = sorted(set(two) ^ set(one))[:3]
        return float("inf"), [f"train_ddp.py: the saved {MODEL} holds other weights than one process saves "
                              f"({', '.join(extra)} ...): save the bare network, model.module.state_dict(), not the "
                              "DDP wrapper"]
    largest, name = max(((two[k].double() - one[k].double()).abs().max().item(), k) for k in two)
    if largest > tolerance:
        return largest, [f"train_ddp.py: the model trained by 2 processes differs from one process's with the same "
                         f"global batch: largest weight difference {largest:.1e} (in {name}), allowed {tolerance:.1e}"]
    return largest, []


def float64_problems(run: Run) -> list[str]:
    """The run's training processes really computed in float64 (COURSE_FLOAT64): else a comparison means nothing."""
    if run.workers and not all(r.float64 for r in run.workers):
        return ["the harness could not switch the training to float64 (COURSE_FLOAT64): its comparison with one "
                "process cannot be trusted; report this to the course team"]
    return []


def learning(rows: list[tuple]) -> tuple[dict, list[str]]:
    """Figures of a log (pictures/s, seconds, final loss) and whether the loss fell from the first to the last
    epoch (mean over each epoch's steps: a single step's loss is noisy)."""
    if not rows:
        return {}, [f"the log {LOG} is empty or missing: rank 0 writes a line per step"]
    epochs = sorted({row[0] for row in rows})
    mean = {e: sum(r[3] for r in rows if r[0] == e) / sum(1 for r in rows if r[0] == e) for e in epochs}
    seconds = rows[-1][2]
    figures = {"pictures_per_s": round(sum(r[1] for r in rows) / seconds, 1) if seconds > 0 else None,
               "train_seconds": round(seconds, 1), "epochs": len(epochs), "final_loss": round(mean[epochs[-1]], 4)}
    if len(epochs) < 2:
        return figures, [f"the log holds {len(epochs)} epoch(s); the loss can only be seen to fall over two or more"]
    if not mean[epochs[-1]] < mean[epochs[0]]:
        return figures, [f"the loss did not fall: {mean[epochs[0]]:.4f} in epoch {epochs[0]}, {mean[epochs[-1]]:.4f} "
                         f"in epoch {epochs[-1]}"]
    return figures, []
