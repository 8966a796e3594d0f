"""Exercise 4's cluster job `loaders`: its login-node step (stand-ins, or the real Pets, packed by the course's own
pack.py), what its batch script must hold (the course checker's rules, harness/coursecheck.py, and the lesson's own:
one task per GPU, /dev/shm), and its verdict: every task of every srun step read its share in every format.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from harness import packing, sbatch
from harness.coursecheck.batch import script_problems
from harness.coursecheck.conflicts import conflict_markers
from harness.exercises import ROOT
from harness.exercises.cats import site_pictures
from harness.exercises.formats.shares import FORMATS, printed
from harness.report import cuda_standin_env, unseen_gpu_problems

PACKED_FORMATS = ("hdf5", "arrow")
SHM = "/dev/shm/"  # node-local memory: where the batch script copies the packed files


def sbatch_problems(script: Path) -> list[str]:
    """What sbatch would get wrong without a word, by the course checker's rules (harness/coursecheck/):
    merge-conflict markers, #SBATCH lines after the first command (sbatch ignores them), GPUs not asked for, cores
    that never reach srun, several tasks per node picking cuda:<local id> (the programs beside it first)."""
    found = conflict_markers(script.parent, [script]) + script_problems(script, ROOT, rel=script.name)
    return [str(problem) for problem in found]


def loaders_sbatch_problems(script: Path) -> list[str]:
    """The lesson's batch script: the checker's rules, and one task per GPU, a quarter of the node's cores each,
    all four GPUs, the packed files copied to node-local memory."""
    problems = sbatch_problems(script)
    options = sbatch.read(script).options
    for option, value, why in (("ntasks-per-node", "4", "one task per GPU"),
                               ("gres", "gpu:4", "the node's four GPUs, one per task"),
                               ("cpus-per-task", "32", "a quarter of the node's 128 cores for each task")):
        if options.get(option, (0, ""))[1] != value:
            problems.append(f"{script.name}: `#SBATCH --{option}={value}` is missing ({why})")
    if SHM not in script.read_text():
        problems.append(f"{script.name}: the packed files are not copied to {SHM}")
    return problems


def tasks_per_node(result) -> int:
    """--ntasks-per-node as the job got it: the site's sbatch_args override the script's #SBATCH line."""
    script = result.workdir / "loaders.sbatch"
    command_line = result.settings.get("sbatch_args", [])
    if script.is_file():
        value = sbatch.read(script).option("ntasks-per-node", command_line)
    else:
        value = dict(sbatch.options(" ".join(command_line))).get("ntasks-per-node")
    return int(value) if value and value.isdigit() else 1


def check_loaders_job(result, shm: str = SHM) -> tuple[dict, list[str]]:
    """Every task of every srun step ran and read its share in every format; images/s per format (all tasks of the
    node together) from the shared file system and from node-local memory (`shm`)."""
    script = result.workdir / "loaders.sbatch"
    problems = sbatch_problems(script) if script.is_file() else []
    reports = result.reports
    lines = printed(result.output)
    prepared_file = result.workdir / "prepared.json"
    prepared = json.loads(prepared_file.read_text()) if prepared_file.is_file() else {}
    problems += unseen_gpu_problems(reports)
    for report in reports:
        if report.exception:
            rank = report.slurm.get("procid", "?")
            problems.append(f"rank {rank} on {report.host} died: {report.exception}")
    nodes = len({(r.slurm.get("nodeid"), r.host) for r in reports}) or 1
    per_node = tasks_per_node(result)
    world = nodes * per_node
    steps: dict[str, list] = {}
    for report in reports:
        steps.setdefault(report.slurm.get("step_id", "?"), []).append(report)
    for step, members in sorted(steps.items()):
        ranks = sorted(int(r.slurm.get("procid", -1)) for r in members)
        if ranks != list(range(world)):
            missing = sorted(set(range(world)) - set(ranks))
            problems.append(f"srun step {step}: ranks {ranks} ran; a job of {nodes} node(s) x {per_node} tasks "
                            f"needs ranks 0-{world - 1}" + (f" (missing: {missing})" if missing else ""))
        told = {r.slurm.get("ntasks") for r in members}
        if told != {str(world)}:
            problems.append(f"srun step {step}: the tasks saw SLURM_NTASKS={','.join(sorted(map(str, told)))}, "
                            f"not {world} (nodes x --ntasks-per-node)")
    if not lines:
        return {}, problems + ["no `rank R/W FORMAT from PATH: N images in S s = X images/s` lines in the output"]
    figures: dict = {"tasks": world}
    places = {"fs": [l for l in lines if not l["path"].startswith(shm)], "shm": [l for l in lines
                                                                               if l["path"].startswith(shm)]}
    wanted = {"fs": FORMATS if prepared.get("images") else PACKED_FORMATS, "shm": PACKED_FORMATS}
    count = prepared.get("count")
    for place, formats in wanted.items():
        for name in formats:
            mine = [l for l in places[place] if l["format"] == name]
            where = "node-local memory (/dev/shm)" if place == "shm" else "the shared file system"
            if not mine:
                problems.append(f"no pass of {name} from {where}")
                continue
            ranks = sorted(l["rank"] for l in mine)
            if ranks != list(range(world)):
                problems.append(f"{name} from {where}: ranks {ranks} printed a figure, not 0-{world - 1}")
            if count:
                share = math.ceil(count / world)
                off = [l for l in mine if l["images"] != share]
                if off:
                    problems.append(f"{name} from {where}: rank {off[0]['rank']} read {off[0]['images']} images, "
                                    f"its share of {count} is {share} (DistributedSampler from SLURM_NTASKS and "
                                    "SLURM_PROCID)")
            figures[f"{name}_{place}_images_per_s"] = round(sum(l["rate"] for l in mine), 1)
    if result.site.gpus_real:
        on_cpu = [l for l in lines if not l["device"].startswith("cuda")]
        if on_cpu:
            problems.append(f"rank {on_cpu[0]['rank']} ran on {on_cpu[0]['device']}: torch saw no GPU")
    return figures, problems


def prepare_loaders(run, workdir: Path) -> dict[str, str]:
    """The login-node step (harness.packing): the pictures, packed by the course's own pack.py staged in `workdir`;
    the job gets both places in PETS_IMAGES and PETS_PACKED."""
    images, packed = packing.prepare(run, workdir, run.site.job("loaders").values, lambda: site_pictures(run),
                                     ("pets.h5", "pets.arrow"))
    count = sum(1 for _ in images.glob("*.jpg"))
    (workdir / "prepared.json").write_text(json.dumps({"images": str(images), "packed": str(packed), "count": count}))
    return {"PETS_IMAGES": str(images), "PETS_PACKED": str(packed), **cuda_standin_env(run.site.gpus_real)}
