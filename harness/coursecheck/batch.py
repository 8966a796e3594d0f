"""Rules 1, 3, 4 and 6: what sbatch gets wrong without a word in the course's batch scripts (read by harness/sbatch.py,
the one reader of batch scripts), with the site profiles read through harness/sites.py."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness import sites as profiles
from harness.bookcommands import PYTHON, interpreted_program, words
from harness.coursecheck.files import Problem, course_files, relative
from harness.sbatch import Sbatch, options, read

GPU_PARTITION = re.compile(r"gpu|booster", re.IGNORECASE)
GPU_OPTIONS = ("gpus", "gpus-per-node", "gpus-per-task", "gpus-per-socket")


def sbatch_order(script: Sbatch, rel: str) -> list[Problem]:
    if script.first_command is None:
        return []
    line, command = script.first_command
    return [Problem(rel, number, f"`{text}` comes after the first command (line {line}: `{command}`), so sbatch "
                                 f"ignores it and the job runs without it: move it up to the other #SBATCH lines, "
                                 f"above line {line}")
            for number, text in script.late]


@dataclass(frozen=True)
class Sites:
    """What the site profiles of a course put on the sbatch command line."""
    partitions: tuple[tuple[str, str], ...] = ()  # (profile file, partition)
    cpus_per_task: int = 1  # the largest
    gpus_per_node: int = 4  # the largest


def read_sites(root: Path) -> Sites:
    """What the site profiles of the course in `root` put on the sbatch command line (a profile that
    harness/sites.py cannot read is left out: that module reports it)."""
    partitions, cpus, gpus = [], [], []
    for path in sorted((root / "slurm" / "sites").glob("*.toml")):
        try:
            site = profiles.load(path)
        except profiles.SiteError:
            continue
        if site.partition:
            partitions.append((relative(path, root), site.partition))
        cpus.append(site.cpus_per_task)
        gpus.append(site.gpus_per_node)
    return Sites(tuple(partitions), max(cpus, default=1), max(gpus, default=4))


def gpus(script: Sbatch, rel: str, sites: Sites) -> list[Problem]:
    asked = any(key in script.options for key in GPU_OPTIONS) or "gpu" in script.options.get("gres", (0, ""))[1]
    if asked:
        return []
    fix = (f"add `#SBATCH --gres=gpu:{sites.gpus_per_node}` to the #SBATCH lines (on JSC's GPU partitions a job "
           f"gets GPUs only when it asks for them; without it torch sees none and prints `device: cpu`)")
    if "partition" in script.options:
        line, partition = script.options["partition"]
        if GPU_PARTITION.search(partition):
            return [Problem(rel, line, f"the job runs on the GPU partition `{partition}` but asks for no GPUs: {fix}")]
        return []
    on_gpus = [(profile, partition) for profile, partition in sites.partitions if GPU_PARTITION.search(partition)]
    if on_gpus:
        profile, partition = on_gpus[0]
        return [Problem(rel, script.first_directive or 1, f"the site profile {profile} submits the job to the GPU "
                                                          f"partition `{partition}`, but it asks for no GPUs: {fix}")]
    return []


def _cores(script: Sbatch, sites: Sites) -> tuple[int, str]:
    """Cores per task and where the number comes from."""
    if "cpus-per-task" in script.options:
        value = script.options["cpus-per-task"][1]
        return (int(value) if value.isdigit() else 1), f"--cpus-per-task={value}"
    return sites.cpus_per_task, f"cpus_per_task = {sites.cpus_per_task} of the site profiles, passed on by sbatch"


def srun_cpus(script: Sbatch, rel: str, sites: Sites) -> list[Problem]:
    cores, source = _cores(script, sites)
    if cores <= 1 or script.first_command is None:
        return []
    exported = False
    for number, text in script.body():
        for simple in words(text):
            command = list(simple.words)
            prefix = False
            while command and re.match(r"^[A-Za-z_]\w*=", command[0]):
                prefix = prefix or command[0].startswith("SRUN_CPUS_PER_TASK=")
                command = command[1:]
            if not command:
                exported = exported or prefix  # SRUN_CPUS_PER_TASK=... alone (then `export` it, or not: see below)
                continue
            if command[0] in ("export", "declare", "typeset") and any(
                    word.startswith("SRUN_CPUS_PER_TASK") for word in command[1:]):
                exported = True
            elif command[0] == "srun":
                own = any(key == "cpus-per-task" for key, _ in options(" ".join(command[1:])))
                if not (exported or prefix or own):
                    return [Problem(rel, number, f"the job asks for {cores} cores per task ({source}), but since "
                                                 f"Slurm 22.05 this srun gives the program only one: add "
                                                 f"`export SRUN_CPUS_PER_TASK=\"$SLURM_CPUS_PER_TASK\"` before it")]
                return []
    return []


LOCAL_ID = re.compile(r"\bSLURM_LOCALID\b")
ASSIGNED = re.compile(r"^\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=[^=]")


def _picks_gpu_by_local_id(program: Path) -> int:
    """The line (1-based) where `program` picks `cuda:<local id>` without looking at what it sees; 0 if none."""
    names = set()
    for number, line in enumerate(program.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        code = line.split("#", 1)[0]
        by_local_id = LOCAL_ID.search(code) or any(re.search(rf"\b{name}\b", code) for name in names)
        if by_local_id and "cuda" in code and "device_count" not in code:
            return number
        assigned = ASSIGNED.match(code)
        if assigned and LOCAL_ID.search(code) and "cuda" not in code:
            names.update(name.strip() for name in assigned.group(1).split(","))
    return 0


def local_id_gpus(script: Sbatch, rel: str, root: Path) -> list[Problem]:
    tasks = script.options.get("ntasks-per-node", (0, "1"))[1]
    if not tasks.isdigit() or int(tasks) <= 1 or script.first_command is None:
        return []
    for number, text in script.body():
        for simple in words(text):
            if list(simple.words[:1]) in (["export"], ["declare"]) and any(
                    word.startswith("CUDA_VISIBLE_DEVICES=") for word in simple.words[1:]):
                return []  # every task keeps the whole list (psslurm: a changed variable is left alone)
            command = [word for word in simple.words if not re.match(r"^[A-Za-z_]\w*=", word)]
            if command[:1] != ["srun"]:
                continue
            python = next((i for i, word in enumerate(command) if PYTHON.match(word)), None)
            name = interpreted_program(command[python + 1:])[0] if python is not None else None
            if not name or not name.endswith(".py"):
                continue
            places = [script.path.parent, root / "exercises", root / "solutions"]
            for program in (place / PurePosixPath(name).name for place in places):
                line = _picks_gpu_by_local_id(program) if program.is_file() else 0
                if line:
                    return [Problem(rel, number, f"{int(tasks)} tasks per node run {name}, which picks "
                                                 f"`cuda:<SLURM_LOCALID>` ({relative(program, root)}:{line}); on "
                                                 f"JURECA-DC psslurm gives each of them one GPU of its own, so every "
                                                 f"task but the first asks for a GPU it cannot see (\"invalid device "
                                                 f"ordinal\"): pick among the GPUs the task sees (SLURM_LOCALID % "
                                                 f"torch.cuda.device_count())")]
    return []


def sbatch_files(root: Path, files: list[Path] | None = None) -> list[Path]:
    return [p for p in (course_files(root) if files is None else files) if p.suffix == ".sbatch"]


def script_problems(path: Path, root: Path, sites: Sites | None = None, rel: str | None = None) -> list[Problem]:
    """Rules 1, 3, 4 and 6 for one batch script, with the site profiles and programs of the course in `root`."""
    script, rel = read(path), rel or relative(path, root)
    sites = sites or read_sites(root)
    return (sbatch_order(script, rel) + gpus(script, rel, sites) + srun_cpus(script, rel, sites)
            + local_id_gpus(script, rel, root))


def exercise_script_problems(root: Path, exercise) -> list[Problem]:
    """Rules 1, 3, 4 and 6 for the batch scripts of an exercise's cluster jobs (`Exercise.cluster_jobs`): what a
    student edits and submits, checked in the self-check; the rules are proven on broken copies in
    tests/test_course_files.py."""
    return check_sbatch(root, [root / "slurm" / job.sbatch for job in exercise.cluster_jobs])


def check_sbatch(root: Path, files: list[Path] | None = None) -> list[Problem]:
    """Rules 1, 3, 4 and 6 for every sbatch file of the course."""
    sites = read_sites(root)
    return [problem for path in sbatch_files(root, files) for problem in script_problems(path, root, sites)]
