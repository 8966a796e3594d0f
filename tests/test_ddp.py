"""Exercise 5: one training spread over many processes with DistributedDataParallel, checked on the CPU with gloo.

5a train.py learns on one process and keeps its log and model.
5b train_ddp.py under torchrun_jsc --standalone (two processes, no Slurm): one process group of the right size;
   each rank trains on its own share of the pictures, in a new order every epoch; the loss of every step equals that
   of one process with the same global batch; rank 0 alone saves the model and keeps the log; a rank that crashes
   ends the whole run at once, with a message that names it.
5c slurm/ddp.sbatch itself on the two-node local cluster: 2 nodes x 4 processes, gloo, the verdict of the cluster
   job; a crashing rank on the second node fails the job (FAILED, not a hang until the time limit).
5d the cluster job as `pytest --cluster` runs it, with its one-GPU baseline (the same script, one process): its scaling
   efficiency holds the local profile's reference, and fails one far beyond it; a baseline gone wrong is one line.
Each check is also run on a deliberately broken copy of the solution, and must catch it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.exercises import ROOT
from harness.exercises.ddp import EXERCISE, checks, cluster, fixtures, runs
from harness.localcluster import LocalCluster
from harness.requires import require
from harness.offline import Ran, program_env
from harness.report import read_reports, unseen_gpu_problems

from broken_copies import broken_copy_of

SOLUTIONS = ROOT / "solutions"
PROGRAMS = ("pack.py", "datasets.py", "train.py", "train_ddp.py")
BROKEN_EPOCHS = 2  # enough for the order of a second epoch; the broken runs are compared with the first two


def broken_copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """A folder holding the solutions' programs, train_ddp.py with each `old` replaced by `new` (it must contain it)."""
    folder = tmp_path / "broken"
    folder.mkdir(exist_ok=True)
    for program in PROGRAMS:
        shutil.copy2(SOLUTIONS / program, folder / program)
    broken_copy_of(SOLUTIONS / "train_ddp.py", folder / "train_ddp.py", *edits)
    return folder


def crashing_copy(tmp_path: Path, rank: str) -> Path:
    """train_ddp.py whose rank `rank` (a Python expression) raises at the start of epoch 1."""
    loop = "    for epoch in range(EPOCHS):\n"
    crash = (f"        if epoch == 1 and dist.get_rank() == {rank}:\n"
             f"            raise RuntimeError(f'deliberate crash of rank {{dist.get_rank()}} in epoch 1')\n")
    return broken_copy(tmp_path, (loop, loop + crash))


def succeeded(run: runs.Run, program: str = "train_ddp.py") -> None:
    if run.ran.returncode != 0:
        pytest.fail(runs.failure(run.ran, program) + "\n" + run.explain(), pytrace=False)


# --- 5a: one process ------------------------------------------------------------------------------------------------

def test_single_process_training_learns_and_keeps_log_and_model(ddp_single: runs.Run) -> None:
    succeeded(ddp_single, "train.py")
    figures, problems = checks.learning(ddp_single.log())
    assert not problems, problems[0]
    print("train.py:", figures, f"({ddp_single.seconds:.1f} s)")
    assert (ddp_single.workdir / runs.MODEL).is_file(), "train.py saved no model.pt in its working folder"
    assert not [r for r in ddp_single.workers if r.network], "train.py tried to reach the network"


# --- 5b: two processes under torchrun --------------------------------------------------------------------------------

def test_every_rank_joins_one_group_of_two_with_gloo(ddp_two: runs.Run) -> None:
    succeeded(ddp_two)
    problems = checks.world_problems(ddp_two.workers, world=2, backend="gloo")
    problems += checks.lifecycle_problems(ddp_two.workers)
    assert not problems, problems[0]
    sizes = {r.rank.get("world_size") for r in ddp_two.workers}  # what torchrun told them
    assert sizes == {"2"}, f"torchrun told the processes a world size of {sizes}, not 2"
    assert not ddp_two.leftover, "processes of the run outlived torchrun"


def test_ranks_train_on_disjoint_shares_that_cover_the_data_set(ddp_two: runs.Run, ddp_packed: runs.Packed) -> None:
    succeeded(ddp_two)
    shards = ddp_two.shards()
    problems = checks.shard_problems(shards, ddp_packed.count, world=2, batch=runs.BATCH)
    assert not problems, problems[0]
    per_rank = {rank: len(epochs[0]) for rank, epochs in shards.items()}
    share = ddp_packed.count // 2 // runs.BATCH * runs.BATCH
    assert set(per_rank.values()) == {share}, f"the ranks trained on {per_rank} pictures in epoch 0; each should " \
        f"on {share} (its half, in whole batches of {runs.BATCH})"


def test_loss_of_every_step_equals_one_process_with_the_same_global_batch(ddp_two: runs.Run,
                                                                          ddp_one: runs.Run) -> None:
    """DistributedSampler orders the pictures by one permutation of the epoch's seed and deals them out in turn, so
    the two ranks' batches of a step together hold exactly the pictures of the single process's batch; DDP averages
    the gradients of the two half-batch means, which is the mean over the whole batch. Only float rounding differs,
    and both runs compute in float64, so the tolerance (checks.TOLERANCE, derived there) is far below any mistake:
    the losses of every step and the saved weights must agree within it."""
    import torch

    succeeded(ddp_two)
    succeeded(ddp_one)
    problems = checks.float64_problems(ddp_two) + checks.float64_problems(ddp_one)
    rows, reference = ddp_two.log(), ddp_one.log()
    problems += checks.loss_problems(rows, reference)
    assert not problems, problems[0]
    two, one = (torch.load(run.workdir / runs.MODEL, map_location="cpu") for run in (ddp_two, ddp_one))
    largest_weight, problems = checks.weight_problems(two, one)
    assert not problems, problems[0]
    largest_loss = checks.largest_loss_difference(rows, reference)
    print(f"{len(rows)} steps in float64: largest loss difference {largest_loss:.1e}, "
          f"largest weight difference {largest_weight:.1e}, allowed {checks.TOLERANCE:.1e}")


def test_rank_0_alone_saves_the_model_and_keeps_the_log(ddp_two: runs.Run, ddp_packed: runs.Packed) -> None:
    succeeded(ddp_two)
    problems = checks.writer_problems(ddp_two.workers, ddp_two.written(), ddp_two.workdir)
    assert not problems, problems[0]
    steps = len(ddp_two.log())
    assert steps == runs.EPOCHS * (ddp_packed.count // 2 // runs.BATCH), f"{steps} lines in the log"


# --- 5b: broken copies the checks must catch ---------------------------------------------------------------------

SAMPLER = "torch.utils.data.DistributedSampler(data, num_replicas=world, rank=rank, seed=0)"
BROKEN = {
    "every rank trains on all pictures": (
        [(SAMPLER, "torch.utils.data.DistributedSampler(data, num_replicas=1, rank=0, seed=0)")],
        "shards", "went to rank"),
    "the same order every epoch": ([("sampler.set_epoch(epoch)", "pass")], "shards", "sampler.set_epoch"),
    "every rank saves the model": ([("    if rank == 0:  # every process", "    if True:  # every process")],
                                   "writers", "saved the model"),
    "every rank writes the log": ([('open("train_log.csv", "w", buffering=1) if rank == 0 else None',
                                    'open("train_log.csv", "w", buffering=1)')], "writers", "opened train_log.csv"),
    "the logged loss is rank 0's own": ([("            dist.all_reduce(loss)", "            loss *= world")],
                                        "loss", "not averaged"),
    "no timeout for the process group": ([(", timeout=datetime.timedelta(minutes=5)", "")], "lifecycle",
                                         "without a timeout"),
    "the process group is never left": ([("    dist.destroy_process_group()", "    pass")], "lifecycle",
                                        "never left the process group"),
    "the DDP wrapper is saved, not the network": ([("model.module.state_dict()", "model.state_dict()")], "model",
                                                  "save the bare network"),
    "the gradients are not averaged (no DDP)": (
        [("torch.nn.parallel.DistributedDataParallel(make_model().to(device), device_ids=gpu)",
          "make_model().to(device)"),
         ("model.module.state_dict()", "model.state_dict()")], "loss", "not averaged"),
}


@pytest.mark.broken_copy
@pytest.mark.parametrize("mistake", list(BROKEN))
def test_checks_catch_a_broken_copy(mistake: str, ddp_reference: runs.Packed, ddp_reference_one: runs.Run,
                                    tmp_path: Path) -> None:
    edits, check, words = BROKEN[mistake]
    folder = broken_copy(tmp_path, *edits)
    run = runs.run_ddp(folder, fixtures.data_of(ddp_reference), tmp_path / "work", 2, epochs=BROKEN_EPOCHS,
                      float64=True)
    succeeded(run)
    if check == "shards":
        problems = checks.shard_problems(run.shards(), ddp_reference.count, world=2, batch=runs.BATCH)
    elif check == "writers":
        problems = checks.writer_problems(run.workers, run.written(), run.workdir)
    elif check == "lifecycle":
        problems = checks.lifecycle_problems(run.workers)
    elif check == "model":
        import torch

        saved, reference = (torch.load(r.workdir / runs.MODEL, map_location="cpu") for r in (run, ddp_reference_one))
        problems = checks.weight_problems(saved, reference)[1]
    else:
        rows, reference = run.log(), ddp_reference_one.log()[:len(run.log())]
        problems = checks.loss_problems(rows, reference)
        error = checks.largest_loss_difference(rows, reference)
        assert error > 1000 * checks.TOLERANCE, f"{mistake}: its loss differs by only {error:.1e}: no margin"
        print(f"{mistake}: largest loss difference {error:.1e}, allowed {checks.TOLERANCE:.1e} "
              f"(margin x{error / checks.TOLERANCE:.0e})")
    assert problems and words in problems[0], f"{mistake}: the check found {problems}"
    print(f"{mistake}: {problems[0]}")


# --- a rank that crashes ends the run ----------------------------------------------------------------------------

@pytest.mark.broken_copy
def test_a_crashing_rank_ends_the_whole_run_at_once(ddp_reference: runs.Packed, tmp_path: Path) -> None:
    folder = crashing_copy(tmp_path, "1")
    run = runs.run_ddp(folder, fixtures.data_of(ddp_reference), tmp_path / "work", 2, timeout=120)
    assert run.ran.returncode != 0, "torchrun ended well although rank 1 crashed\n" + run.explain()
    assert "[harness] killed" not in run.ran.stderr, "the run hung after rank 1 crashed\n" + run.explain()
    assert not run.leftover, "processes of the run outlived torchrun"
    assert "RuntimeError: deliberate crash of rank 1 in epoch 1" in run.ran.stderr, run.explain()
    assert "train_ddp.py FAILED" in run.ran.stderr and "rank      : 1 " in run.ran.stderr, \
        "torchrun's summary should name the failed rank\n" + run.explain()
    print(f"the run ended {run.seconds:.1f} s after it started")


# --- the student's starting point ----------------------------------------------------------------------------------

@pytest.mark.starting_point
@pytest.mark.parametrize("program, nproc", [("train.py", 0), ("train_ddp.py", 2)])
def test_exercise_stops_at_its_first_todo(program: str, nproc: int, ddp_reference: runs.Packed,
                                          tmp_path: Path) -> None:
    """exercises/ as the course hands it out stops at the first student region, with that region's TODO (not with
    some other error further on). A check of the course's own starting point, not of a student's work."""
    todos = [line.split('NotImplementedError("', 1)[1].rsplit('")', 1)[0]
             for line in (ROOT / "exercises" / program).read_text().splitlines() if 'NotImplementedError("TODO' in line]
    require(bool(todos), f"exercises/{program} has been worked on: its starting point cannot be checked here")
    folder = tmp_path / "exercises"
    folder.mkdir()
    for name in ("train.py", "train_ddp.py"):
        shutil.copy2(ROOT / "exercises" / name, folder / name)
    for earlier in ("pack.py", "datasets.py"):  # exercise 4, finished
        shutil.copy2(SOLUTIONS / earlier, folder / earlier)
    data = fixtures.data_of(ddp_reference)
    run = (runs.run_single(folder, data, tmp_path / "work") if nproc == 0
           else runs.run_ddp(folder, data, tmp_path / "work", nproc, timeout=120))
    assert run.ran.returncode != 0, run.explain()
    assert runs.failure(run.ran, program) == todos[0], run.explain()


def test_a_todo_of_exercise_4_says_to_finish_it_first(tmp_path: Path) -> None:
    ran = Ran(["python", "train_ddp.py"], 1, "", 'Traceback (most recent call last):\n'
              '  File "/x/train_ddp.py", line 9, in main\n  File "/x/datasets.py", line 33, in __getitem__\n'
              '    raise NotImplementedError("TODO: open the file")\nNotImplementedError: TODO: open the file\n')
    line = runs.failure(ran, "train_ddp.py")
    assert line == "first finish exercise 4 (datasets.py): TODO: open the file", f"the failure line reads: {line}"


def test_an_unfinished_pack_py_says_to_finish_exercise_4_first(tmp_path: Path) -> None:
    """Exercises 5 and 6 pack the pictures with the student's pack.py first: its TODO is exercise 4's, and the
    self-check says so (not a bare TODO the student would look for in train_ddp.py)."""
    ran = Ran(["python", "pack.py"], 1, "", 'Traceback (most recent call last):\n'
              '  File "/x/pack.py", line 20, in main\n    raise NotImplementedError("TODO: write pets.h5")\n'
              'NotImplementedError: TODO: write pets.h5\n')
    problems = runs.Packed(tmp_path / "pets.h5", 0, ran).problems()
    assert problems == ["first finish exercise 4 (pack.py): TODO: write pets.h5"], f"the pack step reads: {problems}"


# --- 5c: the batch script on the two-node local cluster ----------------------------------------------------------

def submit_ddp(cluster: LocalCluster, folder: Path, data: Path, venv: Path, time: str, *options: str,
               script: Path = ROOT / "slurm" / "ddp.sbatch", **extra: str) -> tuple[dict, Path]:
    """slurm/ddp.sbatch (or `script`) from `folder` (which holds the programs), as a student submits it; the command
    line adds what this machine needs (2 cores a node), `options`, and the short run's knobs (`extra`: more of
    them). Returns Slurm's record and the folder."""
    from harness.report import report_env

    shutil.copy2(script, folder / "ddp.sbatch")
    env = report_env(folder / "reports", offline=True, base=program_env(
        runs.KNOBS, COURSE_VENV=str(venv), DATA=str(data), **{"EPOCHS": "3", "BATCH": "8", "WORKERS": "1", **extra}))
    record = cluster.run("--cpus-per-task=2", f"--time={time}", *options, "ddp.sbatch", cwd=folder, env=env,
                         timeout_s=600)
    return record, folder


def job_text(folder: Path, record: dict) -> str:
    return "\n".join(p.read_text(errors="replace") for p in (folder / f"output.{record['JobId']}",
                                                             folder / f"error.{record['JobId']}") if p.is_file())


@pytest.mark.slurm
def test_batch_script_trains_on_two_nodes(local_slurm: LocalCluster, target_dir: Path, ddp_packed: runs.Packed,
                                         local_course_venv: Path, tmp_path: Path) -> None:
    from harness.cluster_run import judge
    from harness.sites import SITES_DIR, JobSettings, load
    from harness.slurm import Job, seconds

    folder = tmp_path / "job"
    folder.mkdir()
    for program in ("datasets.py", "train.py", "train_ddp.py"):
        shutil.copy2(target_dir / program, folder / program)
    record, folder = submit_ddp(local_slurm, folder, fixtures.data_of(ddp_packed), local_course_venv, "00:08:00")
    text = job_text(folder, record)
    assert record["JobState"] == "COMPLETED", text
    site = load(SITES_DIR / "local.toml")
    job = Job(name="ddp", job_id=record["JobId"], state=record["JobState"],
              exit_code=record["ExitCode"], elapsed_s=seconds(record["RunTime"]) or 0)
    settings = JobSettings(cpus_per_task=2, values={"backend": "gloo", "standin_per_breed": runs.PER_BREED,
                                                    "packed_dir": ""})
    verdict = judge(job, folder, EXERCISE.cluster_jobs[0], site, settings)
    print(verdict.report(), verdict.figures)
    assert verdict.passed, verdict.report()
    workers = [r for r in read_reports(folder / "reports") if r.program == "train_ddp.py"]
    assert len(workers) == 8 and sorted({r.node for r in workers}) == ["dc01", "dc02"], [r.slurm for r in workers]
    groups = [checks.dist_of(r) for r in workers]
    assert {g["backend"] for g in groups} == {"gloo"} and {g["world_size"] for g in groups} == {8}, groups


@pytest.mark.slurm
def test_a_crashing_rank_fails_the_batch_job(local_slurm: LocalCluster, ddp_reference: runs.Packed,
                                             local_course_venv: Path, tmp_path: Path) -> None:
    """The last rank (on the second node) raises in epoch 1: its torchrun fails, srun --kill-on-bad-exit ends the
    other node's, and the job ends FAILED at once instead of hanging until its time limit."""
    folder = crashing_copy(tmp_path, "dist.get_world_size() - 1")
    record, folder = submit_ddp(local_slurm, folder, fixtures.data_of(ddp_reference), local_course_venv, "00:05:00")
    text = job_text(folder, record)
    assert record["JobState"] == "FAILED", f"{record['JobState']} after {record['RunTime']}\n{text}"
    assert "deliberate crash of rank 7 in epoch 1" in text and "rank      : 7 " in text, text
    print(f"failed after {record['RunTime']} of the 5 min limit")


@pytest.mark.slurm
@pytest.mark.parametrize("variant", ["course", "SLURM_GPUS_ON_NODE"])
def test_the_one_gpu_variant_starts_one_process_per_node(variant: str, local_slurm: LocalCluster,
                                                         ddp_reference: runs.Packed, local_course_venv: Path,
                                                         tmp_path: Path) -> None:
    """The book's `--gres=gpu:1` variant. On JURECA-DC (psslurm, as the local cluster) SLURM_GPUS_ON_NODE is the
    node's 4 whatever --gres asked, so the script as the course had it starts four processes for the one GPU, and
    processes 1-3 ask for a GPU they cannot see (the reporter's CUDA stand-in fails them as CUDA would). The course's
    ddp.sbatch counts the job's GPUs: one process per node, world size 2."""
    script = ROOT / "slurm" / "ddp.sbatch"
    if variant != "course":
        text = script.read_text()
        assert '--nproc_per_node="${#gpu_ids[@]}"' in text, "update this broken copy: ddp.sbatch changed"
        script = tmp_path / "broken.sbatch"
        script.write_text(text.replace('--nproc_per_node="${#gpu_ids[@]}"', '--nproc_per_node="$SLURM_GPUS_ON_NODE"'))
    folder = tmp_path / "job"
    folder.mkdir()
    for program in ("datasets.py", "train.py", "train_ddp.py"):
        shutil.copy2(ROOT / "solutions" / program, folder / program)
    record, folder = submit_ddp(local_slurm, folder, fixtures.data_of(ddp_reference), local_course_venv, "00:05:00",
                                "--gres=gpu:1", script=script, EPOCHS="1", COURSE_CUDA_STANDIN="1")
    workers = [r for r in read_reports(folder / "reports") if r.program == "train_ddp.py"]
    # A process that torchrun stops (SIGTERM) writes no report; those that failed or finished do.
    per_node = {node: sum(1 for r in workers if r.node == node) for node in sorted({r.node for r in workers})}
    if variant == "course":
        assert record["JobState"] == "COMPLETED", job_text(folder, record)
        assert per_node == {"dc01": 1, "dc02": 1}, per_node
        assert {checks.dist_of(r)["world_size"] for r in workers} == {2}, [checks.dist_of(r) for r in workers]
        assert all(r.cuda_standin["asked"] == [0] for r in workers), [r.cuda_standin for r in workers]
    else:
        assert record["JobState"] == "FAILED", job_text(folder, record)
        started = {node: 1 + max(int(r.rank["local_rank"]) for r in workers if r.node == node)
                   for node in per_node}
        assert started == {"dc01": 4, "dc02": 4}, started  # local ranks up to 3: four processes for one GPU
        problem = unseen_gpu_problems(workers)
        assert problem and "but sees 1 GPU(s)" in problem[0], problem


# --- 5d: the cluster job's scaling efficiency, against its one-GPU baseline ---------------------------------------

def baseline_of(tmp_path: Path, state: str = "COMPLETED", exit_code: str = "0:0", processes: int = 1,
                log: str = "0,8,1.0,2.0\n1,8,2.0,1.5\n"):
    """A finished baseline run as the harness hands it to the check (cluster_run.JobResult): Slurm's view, the
    reports of its `processes` training processes and rank 0's log (`log`: epoch, pictures, seconds, loss rows)."""
    from harness.cluster_run import JobResult
    from harness.report import Report
    from harness.sites import SITES_DIR, load
    from harness.slurm import Job

    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / runs.LOG).write_text(log)
    workers = [Report(pid=n, host="dc01", argv=["train_ddp.py"]) for n in range(processes)]
    job = Job(name="ddp-baseline", job_id="12", state=state, exit_code=exit_code)
    return JobResult(load(SITES_DIR / "local.toml"), {}, job, folder, "", "", workers)


def test_the_efficiency_is_the_rate_over_the_processes_times_the_baselines(tmp_path: Path) -> None:
    figures, problems = cluster.efficiency(baseline_of(tmp_path), 16.0, 8)  # the baseline: 16 pictures in 2 s
    assert problems == [] and figures == {"baseline_pictures_per_s": 8.0, "efficiency": 0.25}, \
        f"16 pictures/s of 8 processes over a baseline of 8 pictures/s gave {figures}, problems {problems}"


@pytest.mark.parametrize("state, exit_code, processes, log, words", [
    ("FAILED", "1:0", 1, "", "ended FAILED with exit code 1:0: the program exited with an error"),
    ("TIMEOUT", "0:15", 1, "", "ended TIMEOUT with exit code 0:15: it ran past its time limit"),
    ("COMPLETED", "0:0", 4, "0,8,1.0,2.0\n", "ran 4 training processes, not one"),  # SLURM_GPUS_ON_NODE's mistake
    ("COMPLETED", "0:0", 1, "", "left no pictures/s"),
])
def test_a_baseline_gone_wrong_is_one_line_and_no_efficiency(state: str, exit_code: str, processes: int, log: str,
                                                             words: str, tmp_path: Path) -> None:
    """A recorded baseline that failed, or that ran the wrong number of processes, or left no log: no efficiency
    from it, and one line that says which job, how it ended and where its files are."""
    figures, problems = cluster.efficiency(baseline_of(tmp_path, state, exit_code, processes, log), 600.0, 8)
    assert figures == {} and len(problems) == 1, f"a baseline gone wrong gave figures {figures}, problems {problems}"
    assert problems[0].startswith("the one-GPU baseline (job 12, ddp.sbatch --nodes=1 --gres=gpu:1) ") \
        and words in problems[0] and "\n" not in problems[0], f"the baseline's line reads: {problems[0]}"


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.broken_copy
def test_the_cluster_job_holds_its_efficiency_against_the_one_gpu_baseline(local_slurm: LocalCluster,
                                                                           tmp_path: Path) -> None:
    """The cluster job `ddp` as `pytest --cluster` runs it on the local cluster: ddp.sbatch on two nodes (8
    processes) and its baseline, the same script with `--nodes=1 --gres=gpu:1` on the command line, submitted with
    it from ddp/baseline/, which starts one process. The verdict's efficiency is the job's pictures/s over 8 times the
    baseline's, and holds the local profile's reference ([jobs.ddp.reference] of slurm/sites/local.toml). The same
    finished jobs judged against a reference ten times the measured efficiency (tolerance 0.5: at least five times it,
    impossible whatever this machine's speed) fail with the one-line figure message alone."""
    import dataclasses

    from harness import localcluster, references
    from harness.cluster_run import judge

    site = localcluster.site()
    held = site.job("ddp").references.get("efficiency")
    assert held is not None and held.better == "higher", "slurm/sites/local.toml holds no efficiency for ddp"
    with localcluster.finished_run(site, ["ddp"], tmp_path / "out") as run:
        verdict, folder = run.verdicts["ddp"], run.folder / "ddp"
        figures = verdict.figures
        print(verdict.report(), figures)
        assert verdict.passed, verdict.report()
        single = [r for r in read_reports(folder / "baseline" / "reports") if r.program == "train_ddp.py"]
        assert [checks.dist_of(r)["world_size"] for r in single] == [1], [r.probed for r in single]
        assert figures["world_size"] == 8 and figures["efficiency"] == round(
            figures["pictures_per_s"] / (8 * figures["baseline_pictures_per_s"]), 3), figures
        assert held.holds(figures["efficiency"]), f"{figures['efficiency']} outside {held}"  # as judge() found
        impossible = references.Reference("efficiency", figures["efficiency"] * 10, 0.5, "higher")
        settings = dataclasses.replace(site.job("ddp"), references={"efficiency": impossible})
        again = judge(run.jobs["ddp"], folder, EXERCISE.cluster_jobs[0], site, settings,
                      baseline=run.baselines["ddp"])
    number = references.number
    assert again.problems == [
        f"figure efficiency = {number(figures['efficiency'])} is below its allowed range: reference "
        f"{number(impossible.value)}, tolerance 0.5 (allowed: at least {number(impossible.limit)}; higher is better), "
        "from jobs.ddp.reference of local.toml"], again.report()
