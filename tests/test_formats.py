"""Exercise 4: packed data formats, checked on stand-in pictures on the CPU (a few seconds per check).

4a pack.py writes the layout exercise 5 relies on, byte for byte, and says in one line what is wrong with its input.
4b every Dataset gives back every picture and label, in the same order, also inside forked and spawned workers.
4c time_loaders.py: the tasks of a job (SLURM_NTASKS/SLURM_PROCID, as srun sets them) together read every picture
   once, each its own share; outside Slurm it is one task. The cluster job's verdict judges such a run.
Each check is also run on a deliberately broken copy of a solution, and must catch it.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from harness import packing
from harness.cluster_run import JobResult
from harness.exercises import ROOT
from harness.exercises.formats import EXERCISE, checks, cluster
from harness.exercises.formats import shares as sharing
from harness.failures import why_failed
from harness.offline import program_env, run_program
from harness.sites import load as load_site
from harness.slurm import Job

from broken_copies import broken_copy_of

SOLUTIONS = ROOT / "solutions"


def broken_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A folder holding the solutions' programs, with `old` replaced by `new` in `name` (which must contain it)."""
    folder = tmp_path / "broken"
    folder.mkdir(exist_ok=True)
    for program in EXERCISE.programs:
        shutil.copy2(SOLUTIONS / program, folder / program)
    broken_copy_of(SOLUTIONS / name, folder / name, (old, new))
    return folder


# --- 4a: pack.py ----------------------------------------------------------------------------------------------------

def test_pack_writes_every_picture_unchanged_with_its_label_and_name(formats_pack_run, formats_pictures) -> None:
    ran, out = formats_pack_run
    assert ran.returncode == 0, why_failed("pack.py", ran.returncode, ran.stderr, ran.stdout)
    problems = checks.packed_problems(out, formats_pictures.images)
    assert not problems, problems[0]


@pytest.mark.broken_copy
def test_pack_check_catches_shifted_labels(formats_pictures, tmp_path: Path) -> None:
    folder = broken_copy(tmp_path, "pack.py", "int(name[0].isupper())", "int(name[0].islower())")
    ran = packing.pack(folder / "pack.py", formats_pictures.images, tmp_path / "out", tmp_path / "work")
    assert ran.returncode == 0, "the broken copy of pack.py failed: " + ran.explain()
    problems = checks.packed_problems(tmp_path / "out", formats_pictures.images)
    assert problems and "labels" in problems[0] and "1 = cat" in problems[0], problems


@pytest.mark.parametrize("case", ["missing folder", "empty folder", "no arguments"])
def test_pack_bad_input_is_one_line_saying_what_to_give(target_dir: Path, tmp_path: Path, case: str) -> None:
    (tmp_path / "empty").mkdir()
    args = {"missing folder": [str(tmp_path / "nowhere"), str(tmp_path / "out")],
            "empty folder": [str(tmp_path / "empty"), str(tmp_path / "out")], "no arguments": []}[case]
    ran = run_program([sys.executable, str(target_dir / "pack.py"), *args], cwd=tmp_path, timeout=60)
    assert ran.returncode != 0, f"pack.py accepted {case}\n" + ran.explain()
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in ran.stderr, f"{case}: not one line\n" + ran.explain()
    assert ("IMAGES_FOLDER" in lines[0]) if case == "no arguments" else ("folder" in lines[0]), \
        f"pack.py with {case} should name what to give (the IMAGES_FOLDER), it said: {lines[0]}"
    assert not (tmp_path / "out" / "pets.h5").exists(), "pack.py wrote pets.h5 although its input was wrong"


# --- 4b: datasets.py ------------------------------------------------------------------------------------------------

def test_every_dataset_gives_back_every_picture_and_label_in_order(target_dir: Path, formats_pictures) -> None:
    problems = checks.dataset_problems(target_dir, formats_pictures.packed, formats_pictures.images)
    assert not problems, problems[0]


def test_folder_and_packed_datasets_agree_sample_by_sample(target_dir: Path, formats_pictures) -> None:
    datasets = checks.make_datasets(checks.load_datasets(target_dir), formats_pictures.packed, formats_pictures.images)
    folder = datasets.pop("jpeg-folder")
    import torch

    for i in range(len(folder)):
        image, label = folder[i]
        for name, dataset in datasets.items():
            other, other_label = dataset[i]
            assert torch.equal(image, other) and int(label) == int(other_label), (
                f"sample {i}: the folder Dataset and the {name} Dataset disagree")


@pytest.mark.broken_copy
def test_dataset_check_catches_labels_shifted_by_one(formats_pictures, tmp_path: Path) -> None:
    folder = broken_copy(tmp_path, "datasets.py", "self.labels[i]\n        # --- end",
                         "self.labels[i - 1]\n        # --- end")
    problems = checks.dataset_problems(folder, formats_pictures.packed, formats_pictures.images)
    assert problems and "label" in problems[0], problems


def test_packed_datasets_scale_open_once_and_map_the_file(target_dir: Path, formats_pictures) -> None:
    problems = checks.reading_problems(target_dir, formats_pictures.packed)
    assert not problems, problems[0]


READING_MISTAKES = {
    "size ignored": ("decode(self.images[i].tobytes(), self.size)", "decode(self.images[i].tobytes(), None)",
                     "pass self.size on"),
    "an open per picture": ("if self.images is None:", "if True:", "opened pets.h5 3 times"),
    "Arrow read into memory": ("self.table = pa.ipc.open_file(pa.memory_map(str(self.path))).read_all()",
                               "self.table = pa.ipc.open_file(pa.OSFile(str(self.path))).read_all()", "pa.memory_map"),
}


@pytest.mark.broken_copy
@pytest.mark.parametrize("mistake", list(READING_MISTAKES))
def test_reading_check_catches(mistake: str, formats_pictures, tmp_path: Path) -> None:
    old, new, words = READING_MISTAKES[mistake]
    folder = broken_copy(tmp_path, "datasets.py", old, new)
    problems = checks.reading_problems(folder, formats_pictures.packed)
    assert problems and words in problems[0], f"{mistake}: the check found {problems}"
    print(f"{mistake}: {problems[0]}")


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_packed_datasets_work_in_dataloader_workers(target_dir: Path, formats_pictures, tmp_path: Path,
                                                    context: str) -> None:
    problems = checks.worker_problems(target_dir, formats_pictures.packed, formats_pictures.images, context, tmp_path)
    assert not problems, problems[0]


@pytest.mark.broken_copy
def test_worker_check_catches_a_file_opened_in_init(formats_pictures, tmp_path: Path) -> None:
    """An HDF5 file opened in __init__ travels to the workers with the Dataset: a spawned (or forkserver) worker
    cannot even receive it ("h5py objects cannot be pickled")."""
    folder = broken_copy(tmp_path, "datasets.py", "self.images, self.labels = path, size, None,",
                         "self.images, self.labels = path, size, h5py.File(path, 'r')['images'],")
    problems = checks.worker_problems(folder, formats_pictures.packed, formats_pictures.images, "spawn", tmp_path)
    assert problems and "never in __init__" in problems[0], problems


# --- 4c: time_loaders.py --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("world", sharing.WORLD_SIZES, ids=lambda w: "outside Slurm" if w == 1 else f"{w} tasks")
def test_tasks_together_read_every_picture_once(formats_shares, formats_pictures, world: int) -> None:
    problems = sharing.share_problems(formats_shares[world], formats_pictures.names)
    assert not problems, problems[0]
    runs = formats_shares[world].runs()
    failed = [why_failed("time_loaders.py", r.returncode, r.stderr, r.stdout) for r in runs if r.returncode]
    assert not failed, failed[0]
    for rank, ran in enumerate(runs):
        assert ran.reports and ran.reports[0].slurm.get("procid", "0") == str(rank), \
            f"task {rank} of {world} did not run as SLURM_PROCID={rank}"
        assert "on cpu" in ran.stdout, "time_loaders.py should fall back to the CPU where there is no GPU"


def test_time_loaders_without_packed_files_says_so_in_one_line(target_dir: Path, tmp_path: Path) -> None:
    ran = run_program([sys.executable, str(target_dir / "time_loaders.py"), str(tmp_path / "nothing")], cwd=tmp_path,
                      env=program_env(sharing.KNOBS), timeout=120)
    assert ran.returncode != 0, "time_loaders.py ended well although there were no packed files to read"
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "pets.h5" in lines[0] and "pack" in lines[0], \
        f"time_loaders.py without packed files should say in one line that pets.h5 is missing and to run pack.py; " \
        f"it said: {lines[-3:]}"


@pytest.mark.broken_copy
@pytest.mark.parametrize("mistake,old,new,caught", [
    ("no DistributedSampler: every task reads everything", "sampler=sampler,", "shuffle=True,",
     "(all of them: each task must read only its share"),
    ("every task thinks it is rank 0", "rank=rank)", "rank=0)", "were read by more than one rank"),
], ids=["no sampler", "rank ignored"])
def test_share_check_catches(mistake: str, old: str, new: str, caught: str, formats_pictures, tmp_path: Path) -> None:
    """Each broken copy runs to its end (a crash would be caught by anything) and is caught by its own problem."""
    folder = broken_copy(tmp_path, "time_loaders.py", old, new)
    shares = sharing.run_shares(folder, formats_pictures.packed, formats_pictures.images, 2, tmp_path / "run")
    failed = [run.explain() for run in shares.runs() if run.returncode != 0]
    assert not failed, f"{mistake}: the broken copy crashed instead of reading the wrong share:\n{failed[0]}"
    problems = sharing.share_problems(shares, formats_pictures.names)
    assert problems and caught in problems[0], f"{mistake}: not caught as such; the check said {problems}"


# A step of two tasks on one node as JURECA-DC's psslurm starts it: each task sees one GPU (its own, as cuda:0).
TODAYS_DEVICE_RULE = (" % torch.cuda.device_count()}", "}")  # back to cuda:$SLURM_LOCALID, as the course had it


def test_each_task_takes_a_gpu_it_can_see_when_psslurm_gives_it_one(target_dir: Path, formats_pictures,
                                                                    tmp_path: Path) -> None:
    shares = sharing.run_shares(target_dir, formats_pictures.packed, formats_pictures.images, 2, tmp_path / "run",
                            gpu_per_task=True)
    problems = sharing.share_problems(shares, formats_pictures.names)
    assert not problems, problems[0]
    devices = [line["device"] for line in sharing.printed(shares.output)]
    assert set(devices) == {"cuda:0"}, f"each task sees one GPU, cuda:0, but time_loaders.py used {devices}"
    asked = [r.cuda_standin["asked"] for r in shares.reports if r.cuda_standin]
    assert asked == [[0], [0]], f"the two tasks asked for the GPUs {asked}, each should only for its one, 0"


@pytest.mark.broken_copy
def test_a_task_asking_for_a_gpu_it_cannot_see_fails_naming_the_cause(formats_pictures, tmp_path: Path) -> None:
    """time_loaders.py as the course had it picks cuda:$SLURM_LOCALID: rank 1 asks for cuda:1 and sees one GPU."""
    folder = broken_copy(tmp_path, "time_loaders.py", *TODAYS_DEVICE_RULE)
    step = sharing.run_shares(folder, formats_pictures.packed, None, 2, tmp_path / "run", gpu_per_task=True)
    problems = sharing.share_problems(step, formats_pictures.names)
    assert problems and "rank 1" in problems[0] and "invalid device ordinal" in problems[0], problems
    _, problems = cluster.check_loaders_job(job_result(tmp_path / "job", [step], len(formats_pictures.names),
                                                   formats_pictures.images))
    assert "asked for cuda:1 but sees 1 GPU(s)" in problems[0] and "psslurm" in problems[0], problems


# --- the cluster job ------------------------------------------------------------------------------------------------

def job_result(tmp_path: Path, steps: list[sharing.Shares], count: int, images: Path, drop_rank: int | None = None):
    """A JobResult as the cluster run hands it to the check, from simulated srun steps of time_loaders.py."""
    workdir = tmp_path / "job"
    workdir.mkdir(parents=True)
    shutil.copy2(ROOT / "slurm" / "loaders.sbatch", workdir)
    (workdir / "prepared.json").write_text(json.dumps({"images": str(images), "count": count}))
    world = steps[0].world
    site = load_site(ROOT / "slurm" / "sites" / "local.toml")
    settings = {**site.job("loaders").as_dict(), "sbatch_args": [f"--ntasks-per-node={world}"]}
    runs = [(rank, ran) for step in steps for rank, ran in enumerate(step.runs()) if rank != drop_rank]
    reports = sorted((report for _, ran in runs for report in ran.reports), key=lambda r: r.started)
    output = "".join(ran.stdout for _, ran in runs)
    return JobResult(site, settings, Job("loaders", "4242", "loaders-test", state="COMPLETED", exit_code="0:0"),
                     workdir, output, "", reports)


@pytest.fixture
def two_steps(formats_pictures, tmp_path: Path) -> list[sharing.Shares]:
    """The batch script's two srun steps with two tasks: the shared file system, then a node-local copy."""
    local = tmp_path / "node-local"
    local.mkdir()
    for name in ("pets.h5", "pets.arrow"):
        shutil.copy2(formats_pictures.packed / name, local / name)
    first = sharing.run_shares(SOLUTIONS, formats_pictures.packed, formats_pictures.images, 2, tmp_path / "step0")
    second = sharing.run_shares(SOLUTIONS, local, None, 2, tmp_path / "step1", step=1)
    return [first, second]


@pytest.mark.broken_copy
def test_cluster_check_passes_a_good_job_and_catches_a_missing_rank(two_steps, formats_pictures,
                                                                    tmp_path: Path) -> None:
    shm = str(tmp_path / "node-local")
    count = len(formats_pictures.names)
    figures, problems = cluster.check_loaders_job(job_result(tmp_path / "good", two_steps, count,
                                                         formats_pictures.images), shm=shm)
    assert not problems, problems[0]
    assert figures["tasks"] == 2, f"the verdict counted {figures['tasks']} tasks, not 2"
    for name in ("jpeg-folder_fs", "hdf5_fs", "arrow_fs", "hdf5_shm", "arrow_shm"):
        assert figures[f"{name}_images_per_s"] > 0, f"no positive images/s for {name}: {figures}"
    _, problems = cluster.check_loaders_job(job_result(tmp_path / "bad", two_steps, count, formats_pictures.images,
                                                   drop_rank=1), shm=shm)
    assert any("missing: [1]" in p for p in problems), f"the missing rank 1 was not named: {problems}"


def test_loaders_sbatch_asks_for_one_task_per_gpu_and_passes_the_cores_on() -> None:
    problems = cluster.loaders_sbatch_problems(ROOT / "slurm" / "loaders.sbatch")
    assert not problems, problems[0]


@pytest.mark.parametrize("defect", ["merge conflict", "#SBATCH after a command", "no SRUN_CPUS_PER_TASK",
                                    "one task per node"])
@pytest.mark.broken_copy
def test_sbatch_check_catches_the_defects_of_published_course_files(defect: str, tmp_path: Path) -> None:
    text = (ROOT / "slurm" / "loaders.sbatch").read_text()
    if defect == "merge conflict":
        text = text.replace("#SBATCH --time", "<<<<<<< HEAD\n#SBATCH --time", 1) + "=======\n>>>>>>> other\n"
    elif defect == "#SBATCH after a command":
        gres = next(line for line in text.splitlines() if line.startswith("#SBATCH --gres"))
        text = text.replace(gres + "\n", "").replace("\nsource ", f"\nsource /dev/null\n{gres}\nsource ", 1)
    elif defect == "no SRUN_CPUS_PER_TASK":
        text = "\n".join(line for line in text.splitlines() if "SRUN_CPUS_PER_TASK" not in line)
    else:
        text = text.replace("--ntasks-per-node=4", "--ntasks-per-node=1")
    script = tmp_path / "loaders.sbatch"
    script.write_text(text)
    expected = {"merge conflict": "merge-conflict marker", "#SBATCH after a command": "sbatch ignores it",
                "no SRUN_CPUS_PER_TASK": "SRUN_CPUS_PER_TASK", "one task per node": "one task per GPU"}[defect]
    problems = cluster.loaders_sbatch_problems(script)
    assert any(expected in p for p in problems), problems


# --- on the local cluster: loaders.sbatch as submitted, psslurm's GPU binding, the CUDA stand-in ---------------------

@pytest.mark.slurm
@pytest.mark.parametrize("variant", ["course", "cuda:$SLURM_LOCALID"])
def test_loaders_job_on_the_psslurm_like_cluster(variant: str, local_slurm, formats_pictures, local_course_venv: Path,
                                                 tmp_path: Path) -> None:
    """slurm/loaders.sbatch with two tasks per node (a local node has two cores): psslurm gives each task one GPU.
    The course's time_loaders.py takes cuda:0 in each task and the job completes; as the course had it (cuda:
    $SLURM_LOCALID) task 1 asks for cuda:1, fails with "invalid device ordinal", and the verdict says why."""
    from harness.report import read_reports, report_env, unseen_gpu_problems

    folder = broken_copy(tmp_path, "time_loaders.py", *TODAYS_DEVICE_RULE) if variant != "course" else tmp_path / "job"
    folder.mkdir(exist_ok=True)
    for program in ("datasets.py", "time_loaders.py") if variant == "course" else ():
        shutil.copy2(SOLUTIONS / program, folder / program)
    shutil.copy2(ROOT / "slurm" / "loaders.sbatch", folder / "loaders.sbatch")
    env = report_env(folder / "reports", offline=True, base=program_env(
        sharing.KNOBS, COURSE_VENV=str(local_course_venv), PETS_PACKED=str(formats_pictures.packed),
        PETS_IMAGES=str(formats_pictures.images), WORKERS="0", COURSE_CUDA_STANDIN="1"))
    record = local_slurm.run("--ntasks-per-node=2", "--cpus-per-task=1", "--time=00:05:00", "loaders.sbatch",
                             cwd=folder, env=env, timeout_s=600)
    errors = (folder / f"error.{record['JobId']}").read_text(errors="replace")
    reports = read_reports(folder / "reports", ["time_loaders.py"])
    if variant == "course":
        assert record["JobState"] == "COMPLETED", errors
        assert sorted(r.cuda_visible_devices for r in reports) == ["0", "0", "1", "1"], reports  # one GPU each
        assert all(r.cuda_standin["asked"] == [0] for r in reports) and unseen_gpu_problems(reports) == []
    else:
        assert record["JobState"] == "FAILED" and "invalid device ordinal" in errors, errors
        problem = unseen_gpu_problems(reports)
        assert problem and "(local id 1) asked for cuda:1 but sees 1 GPU(s)" in problem[0], problem
