"""Exercise 5: one training spread over many GPUs and two nodes with DistributedDataParallel (DDP).

Everything the harness knows about it lives here:
* the data: Mini-Pets stand-ins packed by the target's own pack.py (exercise 4a) into pets.h5, once per test run;
* runs of train.py, and of train_ddp.py under torchrun_jsc --standalone (one node, no Slurm), offline, with the
  reporter (harness/jobsite/sitecustomize.py, outside the student's code) recording which pictures each rank trained
  on, epoch by epoch (COURSE_REPORT_DETAIL=loaders), and which files each process opened for writing;
* the checks, as functions that return problems, so that tests/test_ddp.py runs each one on the course's files and
  on deliberately broken copies, and the cluster job's verdict uses the same ones;
* the cluster job `ddp`: slurm/ddp.sbatch on two nodes. Its login-node step packs the pictures (stand-ins on the
  test cluster, the real Pets that exercise 2b downloaded elsewhere) with the staged pack.py; its verdict reads the
  processes' reports (torch.distributed's rank, world size and backend, torch.save calls, hosts) and rank 0's log.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import minipets
from harness.exercises import ROOT, ClusterJob, Exercise
from harness.exercises.cats import site_caches
from harness.failures import TODO_RAISED, why_failed
from harness.offline import Ran, mode, offline_command, offline_env
from harness.once import once_per_run
from harness.report import Report, cuda_standin_env, read_reports, unseen_gpu_problems

PER_BREED = 8  # 37 breeds x 8 = 296 pictures: a few seconds per epoch on a two-core CPU
# The knobs of the local runs. BATCH is per process: two processes of 16 make the same global batch as one of 32.
EPOCHS, BATCH, WORKERS = 4, 16, 1
# DDP and one process with the same global batch compute the same training: only the order of float sums differs (a
# mean over 32 pictures against the average of two means over 16, gloo's all-reduce, the CPU's kernels and threads).
# Training amplifies that rounding step by step: in float32 (unit roundoff 2^-24 = 6e-8) the saved weights of the two
# runs differed by up to 1.4e-4 after 36 steps on one machine (x2.3e3), 1e-5 on another, so no float32 tolerance
# tells rounding from a small mistake on every CPU. The local runs that are compared therefore compute in float64
# (COURSE_FLOAT64=1, set by the harness; the student's file is unchanged), unit roundoff 2^-53 = 1.1e-16. Allowed:
# 1e7 of those, 1.1e-9 on a loss or a weight: over 4,000 times the largest amplification seen in float32 (2.3e3),
# and about 10^7 below what each deliberate mistake of tests/test_ddp.py moves (1e-2 or more; it prints each one).
FLOAT64_ENV = {"COURSE_FLOAT64": "1"}
TOLERANCE = 1e7 * 2.0 ** -53
RUN_TIMEOUT_S = 300
SOLUTIONS = ROOT / "solutions"
LOG, MODEL = "train_log.csv", "model.pt"  # what rank 0 writes into its working folder
EARLIER = {"pack.py": "exercise 4 (pack.py)", "datasets.py": "exercise 4 (datasets.py)"}  # files it builds on



# --- the data --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Packed:
    """Stand-in pictures packed by a pack.py: the file, the number of pictures, and the packing run."""
    h5: Path
    count: int
    ran: Ran

    def problems(self) -> list[str]:
        return [] if self.ran.returncode == 0 and self.h5.is_file() else [failure(self.ran, "pack.py")]


def pack(script_dir: Path, images: Path, out: Path, cwd: Path) -> Packed:
    """`python pack.py IMAGES OUT` of `script_dir`, as on the login node."""
    from harness.offline import run_program

    ran = run_program([sys.executable, str(script_dir / "pack.py"), str(images), str(out)], cwd=cwd,
                      env=clean_env(), timeout=RUN_TIMEOUT_S)
    return Packed(out / "pets.h5", sum(1 for _ in images.glob("*.jpg")), ran)


def failure(ran: Ran, program: str) -> str:
    """One line on why a run failed (harness.failures.why_failed), naming exercise 4 first when the TODO it raised
    is in its pack.py or datasets.py, which this exercise builds on."""
    found = TODO_RAISED.search(ran.stderr)
    if found:
        raised_in = re.findall(r'File "[^"]*?([\w.]+\.py)", line \d+', ran.stderr[:found.start()])
        if raised_in and raised_in[-1] in EARLIER:
            return f"first finish {EARLIER[raised_in[-1]]}: {found.group(1)}"
    return why_failed(program, ran.returncode, ran.stderr, ran.stdout)


# --- running the programs ----------------------------------------------------------------------------------------

def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Slurm's and torchrun's variables and the programs' knobs (a test may itself run
    inside a job); one math thread per process (two cores are shared by everything here) unless OMP_NUM_THREADS is
    set, so that the numeric checks can be run with other thread counts (other orders of summation)."""
    drop = ("DATA", "EPOCHS", "BATCH", "WORKERS", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "COURSE_REPORT_DIR", "COURSE_OFFLINE", "COURSE_REPORT_DETAIL", "COURSE_CUDA_STANDIN", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "TORCHELASTIC")) and k not in drop}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore", **extra)
    return env


@dataclass
class Run:
    """One finished run of train.py or train_ddp.py: the program's exit and reports, its working folder, the seconds
    it took."""
    ran: Ran
    seconds: float
    leftover: bool = False  # processes of the run still alive after its launcher ended (they were killed)

    @property
    def workdir(self) -> Path:
        return self.ran.workdir  # type: ignore[return-value]

    @property
    def workers(self) -> list[Report]:
        """The reports of the training processes (train_ddp.py or train.py), not of torchrun's own process."""
        return [r for r in self.ran.reports if r.program in ("train_ddp.py", "train.py")]

    def log(self) -> list[tuple[int, int, float, float]]:
        return read_log(self.workdir / LOG)

    def shards(self) -> dict[int, list[list[int]]]:
        """Rank -> the picture indices its DataLoader handed out, one list per epoch (the reporter's `loaders`)."""
        found: dict[int, list[list[int]]] = {}
        for report in self.workers:
            if "rank" in report.rank:
                found.setdefault(int(report.rank["rank"]), []).extend(report.loader_passes)
        return found

    def written(self) -> dict[int, list[str]]:
        """Rank -> the files its process opened for writing."""
        found: dict[int, list[str]] = {}
        for report in self.workers:
            if "rank" in report.rank:
                found.setdefault(int(report.rank["rank"]), []).extend(report.written)
        return found

    def explain(self) -> str:
        return self.ran.explain() + f"\n(it took {self.seconds:.1f} s)"

    def save(self, path: Path) -> None:
        self.ran.save(path)
        path.with_suffix(".run.json").write_text(json.dumps({"seconds": self.seconds, "leftover": self.leftover}))

    @classmethod
    def load(cls, path: Path) -> "Run":
        extra = json.loads(path.with_suffix(".run.json").read_text())
        return cls(Ran.load(path), extra["seconds"], extra["leftover"])


def launch(argv: list[str], workdir: Path, env: dict[str, str],
           timeout: float = RUN_TIMEOUT_S) -> tuple[Ran, float, bool]:
    """Run `argv` in `workdir` without internet (as on a compute node), the reporter on; its whole process group is
    killed when it outlives `timeout` (torchrun's workers too), and the run then counts as failed. Returns the run,
    its seconds, and whether processes of it outlived the launcher (they are killed then)."""
    workdir.mkdir(parents=True, exist_ok=True)
    how = mode()
    full_env = offline_env(env, workdir / ".reports", how)
    command = offline_command(argv) if how == "netns" else argv
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=workdir, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += f"\n[harness] killed after {timeout:.0f} s: the run hung"
    seconds = time.monotonic() - started
    try:
        os.killpg(process.pid, 0)  # anything left of the run: a worker that torchrun did not take down
        os.killpg(process.pid, signal.SIGKILL)
        leftover = True
    except ProcessLookupError:
        leftover = False
    reports = read_reports(workdir / ".reports") if (workdir / ".reports").is_dir() else []
    return Ran(argv, process.returncode, stdout, stderr, workdir, reports), seconds, leftover


def run_single(script_dir: Path, data: Path, workdir: Path, *, batch: int = 2 * BATCH, epochs: int = EPOCHS,
               workers: int = WORKERS) -> Run:
    """train.py of `script_dir` in one process, as in exercise 5a."""
    env = clean_env(DATA=str(data), EPOCHS=str(epochs), BATCH=str(batch), WORKERS=str(workers))
    return Run(*launch([sys.executable, str(script_dir / "train.py")], workdir, env)[:2])


def run_ddp(script_dir: Path, data: Path, workdir: Path, nproc: int, *, batch: int = BATCH, epochs: int = EPOCHS,
            workers: int = WORKERS, timeout: float = RUN_TIMEOUT_S, float64: bool = False) -> Run:
    """train_ddp.py of `script_dir` in `nproc` processes on this machine: torchrun_jsc --standalone (one node, no
    Slurm), the reporter recording which pictures each rank's DataLoader handed out; in float64 for a run that is
    compared with another (see TOLERANCE)."""
    env = clean_env(DATA=str(data), EPOCHS=str(epochs), BATCH=str(batch), WORKERS=str(workers),
                    COURSE_REPORT_DETAIL="loaders", **(FLOAT64_ENV if float64 else {}))
    argv = [sys.executable, "-m", "torchrun_jsc", "--standalone", f"--nproc_per_node={nproc}",
            str(script_dir / "train_ddp.py")]
    ran, seconds, leftover = launch(argv, workdir, env, timeout)
    return Run(ran, seconds, leftover)


def read_log(path: Path) -> list[tuple[int, int, float, float]]:
    """Rank 0's log: one (epoch, pictures in the step, seconds since the start, loss) per step."""
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        fields = line.split(",")
        if len(fields) == 4:
            rows.append((int(fields[0]), int(fields[1]), float(fields[2]), float(fields[3])))
    return rows


# --- the checks: each returns the problems it found --------------------------------------------------------------

def world_problems(workers: list[Report], world: int, backend: str) -> list[str]:
    """Every rank 0..world-1 joined one process group of `world` processes with `backend`, and none died."""
    problems = [f"rank {r.rank.get('rank', '?')} on {node_of(r)} died: {r.exception}" for r in workers if r.exception]
    joined = [r for r in workers if r.dist]
    if not joined:
        return problems + ["no process joined a process group: call torch.distributed.init_process_group"]
    ranks = sorted(r.dist["rank"] for r in joined)
    if ranks != list(range(world)):
        problems.append(f"the ranks {ranks} joined; a run of {world} processes needs each of 0-{world - 1} once")
    sizes = sorted({r.dist["world_size"] for r in joined})
    if sizes != [world]:
        problems.append(f"the processes saw a world size of {', '.join(map(str, sizes))}, not {world} "
                        "(nodes x processes per node)")
    backends = sorted({r.dist["backend"] for r in joined})
    if backends != [backend]:
        problems.append(f"the process group used {', '.join(backends)}, not {backend}: nccl where there are GPUs, "
                        "gloo on CPUs")
    return problems


def lifecycle_problems(workers: list[Report]) -> list[str]:
    """Every rank joined with a timeout (a rank that dies then ends the others, instead of leaving them waiting in
    the next all-reduce until the job's time limit) and left the process group at the end."""
    joined = [r for r in workers if r.dist]
    untimed = sorted(r.dist["rank"] for r in joined if not r.dist.get("timeout_s"))
    if untimed:
        return [f"train_ddp.py: rank(s) {', '.join(map(str, untimed))} joined the process group without a timeout: "
                "pass init_process_group(..., timeout=datetime.timedelta(minutes=5)), so that a rank that dies ends "
                "the others instead of leaving them waiting until the time limit"]
    stayed = sorted(r.dist["rank"] for r in joined if not r.dist.get("destroyed") and not r.exception)
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
    saves = [(save.get("rank"), save.get("path", "")) for r in run_workers for save in r.saves]
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
    for step, (row, ref) in enumerate(zip(rows, reference)):
        if row[1] != ref[1]:
            return [f"step {step} trained on {row[1]} pictures, the single process on {ref[1]}: the log counts the "
                    "pictures of all processes"]
        if abs(row[3] - ref[3]) > tolerance:
            return [f"train_ddp.py: step {step} (epoch {row[0]}) logged the loss {row[3]:.6f}, but one process with "
                    f"the same global batch has {ref[3]:.6f} (difference {abs(row[3] - ref[3]):.1e}, allowed "
                    f"{tolerance:.1e}): the gradients or the logged loss are not averaged over all processes, or a "
                    "rank trains on other pictures"]
    return []


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


def float64_problems(run: "Run") -> list[str]:
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


# --- the cluster job ---------------------------------------------------------------------------------------------

def prepare_ddp(run, workdir: Path, job: str = "ddp") -> dict[str, str]:
    """The login-node step: pictures (stand-ins on the test cluster, the real Pets elsewhere), packed into pets.h5 by
    the course's own pack.py staged beside the script; the job reads it through DATA. A site's `packed_dir` keeps
    the packed files between runs (the real Pets make about 1.6 GB): they are packed there once."""
    settings = run.site.job(job).values  # `job`: another job that trains on pets.h5 (exercise 6's)
    packed = Path(run.site.expand(settings["packed_dir"])) if settings["packed_dir"] else workdir / "packed"
    if settings["packed_dir"] and (packed / "pets.h5").is_file():
        run.log(f"reusing {packed / 'pets.h5'} (packed_dir of {run.site.path.name}; delete it to pack again)")
        return {"DATA": str(packed / "pets.h5"), **cuda_standin_env(run.site.gpus_real)}
    if run.site.caches.prepare == "minipets":
        images = workdir / "images"
        run.log(f"writing {len(minipets.BREEDS) * settings['standin_per_breed']} stand-in pictures to {images}")
        minipets.write_images(images, per_breed=settings["standin_per_breed"])
    else:
        images = site_caches(run).images  # the real Pets that `python cats.py --prefetch` downloaded (2b)
        if not any(images.glob("*.jpg")):
            raise RuntimeError(f"no Pets pictures in {images}: run `python cats.py --prefetch` on the login node "
                               "first (exercise 2b)")
    python = "python" if run.site.setup else shlex.quote(sys.executable)  # no set-up: the harness's own Python
    lines = [*run.site.setup, f"cd {shlex.quote(str(workdir))}",
             f"{python} pack.py {shlex.quote(str(images))} {shlex.quote(str(packed))}"]
    run.login_shell("packing", lines, run.login_env(), workdir / "pack.log")
    return {"DATA": str(packed / "pets.h5"), **cuda_standin_env(run.site.gpus_real)}


def node_of(report: Report) -> str:
    """The Slurm node a process ran on (SLURMD_NODENAME: the test cluster's nodes share one host), else its host."""
    slurm = report.slurm
    return slurm.get("nodename") or slurm.get("slurmd_nodename") or slurm.get("_nodename") or report.host


def nodes_of(workers: list[Report]) -> list[str]:
    return sorted({node_of(r) for r in workers})


def check_ddp_job(result) -> tuple[dict, list[str]]:
    """The processes of both nodes made one process group (nodes x GPUs per node, every rank, the site's backend),
    rank 0 alone saved the model and kept the log, and the loss fell. Figures: pictures/s, seconds, final loss."""
    workers = [r for r in result.reports if r.program == "train_ddp.py"]
    nodes = nodes_of(workers)
    per_node = result.site.gpus_per_node
    world = max(len(nodes), 1) * per_node
    problems = unseen_gpu_problems(workers) + world_problems(workers, world, result.settings["backend"])
    if len(nodes) < 2:
        problems.append(f"the training ran on {len(nodes)} node(s) ({', '.join(nodes) or 'none'}); the job asks for "
                        "two (--nodes=2, one torchrun per node with --ntasks-per-node=1)")
    per_node_seen = {node: sum(1 for r in workers if node_of(r) == node) for node in nodes}
    short = {node: n for node, n in per_node_seen.items() if n != per_node}
    if short:
        node, n = next(iter(short.items()))
        problems.append(f"node {node} ran {n} training process(es), not one per GPU ({per_node}): "
                        "--nproc_per_node: the entries of SLURM_JOB_GPUS, the GPUs the job got on a node")
    problems += lifecycle_problems(workers) + writer_problems(workers, {}, result.workdir)
    figures, fell = learning(read_log(result.workdir / LOG))
    figures = {"world_size": len(workers), "backend": result.settings["backend"], **figures}
    return figures, problems + fell


EXERCISE = Exercise(
    key="ddp", number=5, title="distribute the work (DDP on many GPUs and two nodes)", day=2, lesson="book/ddp.md",
    programs=("train.py", "train_ddp.py"), tests=("tests/test_ddp.py",),
    cluster_jobs=(ClusterJob(name="ddp", sbatch="ddp.sbatch", programs=("pack.py", "datasets.py", "train.py",
                                                                        "train_ddp.py"),
                             check=check_ddp_job, gpus=True, needs_venv=True, prepare=prepare_ddp,
                             settings={"backend": (str, "nccl"), "standin_per_breed": (int, 16),
                                       "packed_dir": (str, "")},
                             cost="2 nodes, a few minutes (time limit 15 min: at most 64 core-h)"),),
)


# --- fixtures ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def ddp_pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in pictures, drawn once per test run (shared by the xdist workers)."""
    with once_per_run(tmp_path_factory, "ddp-pictures") as root:
        if not (root / "complete").exists():
            minipets.write_images(root / "images", per_breed=PER_BREED)
            (root / "complete").touch()
    return root / "images"


def _packed(folder: Path, pictures: Path, tmp_path_factory: pytest.TempPathFactory) -> Packed:
    with once_per_run(tmp_path_factory, f"ddp-packed-{folder.name}") as root:
        record = root / "ran.json"
        if not record.exists():
            pack(folder, pictures, root / "packed", root / "work").ran.save(record)
        return Packed(root / "packed" / "pets.h5", sum(1 for _ in pictures.glob("*.jpg")), Ran.load(record))


def data_of(packed: Packed) -> Path:
    """The packed file, or the test fails with why the packing failed (a TODO of exercise 4, say)."""
    problems = packed.problems()
    if problems:
        pytest.fail(problems[0], pytrace=False)
    return packed.h5


def _once(tmp_path_factory: pytest.TempPathFactory, name: str, make) -> Run:
    with once_per_run(tmp_path_factory, name) as root:
        record = root / "ran.json"
        if not record.exists():
            make(root / "work").save(record)
        return Run.load(record)


@pytest.fixture(scope="session")
def ddp_packed(target_dir: Path, ddp_pictures: Path, tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """The stand-ins packed by the target's own pack.py (exercise 4a), once per test run."""
    return _packed(target_dir, ddp_pictures, tmp_path_factory)


@pytest.fixture(scope="session")
def ddp_reference(ddp_pictures: Path, tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """The stand-ins packed by solutions/pack.py: for the checks of the checks, which run broken copies of the
    solutions whatever the target."""
    return _packed(SOLUTIONS, ddp_pictures, tmp_path_factory)


@pytest.fixture(scope="session")
def ddp_single(target_dir: Path, ddp_packed: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """train.py of the target in one process (exercise 5a), once per test run."""
    data = data_of(ddp_packed)
    return _once(tmp_path_factory, f"ddp-single-{target_dir.name}", lambda work: run_single(target_dir, data, work))


@pytest.fixture(scope="session")
def ddp_two(target_dir: Path, ddp_packed: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """train_ddp.py of the target in two processes of BATCH pictures, in float64, once per test run."""
    data = data_of(ddp_packed)
    return _once(tmp_path_factory, f"ddp-two-{target_dir.name}",
                 lambda work: run_ddp(target_dir, data, work, 2, float64=True))


def _one(folder: Path, packed: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    data = data_of(packed)
    return _once(tmp_path_factory, f"ddp-one-{folder.name}",
                 lambda work: run_ddp(folder, data, work, 1, batch=2 * BATCH, float64=True))


@pytest.fixture(scope="session")
def ddp_one(target_dir: Path, ddp_packed: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """train_ddp.py of the target in one process of 2 x BATCH pictures, in float64: the same global batch as
    `ddp_two`."""
    return _one(target_dir, ddp_packed, tmp_path_factory)


@pytest.fixture(scope="session")
def ddp_reference_one(ddp_reference: Packed, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`ddp_one` of the solutions: what the broken copies' losses are compared with."""
    return _one(SOLUTIONS, ddp_reference, tmp_path_factory)


def make_course_venv(venv: Path) -> str:
    """A course venv at `venv`, made from venv-template/ the way the local site profile says (on top of the test
    cluster's PyTorch module), unless it is there already. Returns "" or why it could not be made."""
    from harness.sites import SITES_DIR, load

    if (venv / "venv" / "bin" / "python").exists():
        return ""
    shutil.copytree(ROOT / "venv-template", venv, dirs_exist_ok=True, ignore=shutil.ignore_patterns("venv"))
    done = subprocess.run(["bash", "-lc", " && ".join(load(SITES_DIR / "local.toml").venv_setup)], text=True,
                          capture_output=True, env={**clean_env(), "COURSE_VENV": str(venv)}, timeout=600)
    return "" if done.returncode == 0 else f"the course venv could not be made:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def ddp_course_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course venv for the batch jobs of the tests, made once per test run."""
    with once_per_run(tmp_path_factory, "ddp-course-venv") as root:
        why = make_course_venv(root / "venv-template")
        if why:
            pytest.fail(why, pytrace=False)
    return root / "venv-template"
