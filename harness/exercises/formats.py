"""Exercise 4: feed the GPUs fast. Pack the pictures into HDF5 and Arrow (pack.py), read each format with a Dataset
(datasets.py), and time one pass per format by every task of a Slurm job (time_loaders.py, slurm/loaders.sbatch).

Everything the harness knows about it lives here:
* the stand-in pictures (Mini-Pets, a number divisible by the world sizes the tests use) and the reference packing;
* the checks, as functions that return problems, so that tests/test_formats.py runs each one on the course's files
  and on deliberately broken copies: the packed layout (a contract: exercise 5 reads pets.h5), each Dataset against
  the original files, Datasets in forked and in spawned DataLoader workers, the tasks' shares of the data set;
* which picture files each task opened, from the reporter (harness/jobsite/sitecustomize.py,
  COURSE_REPORT_DETAIL=reads=*.jpg: an audit hook, outside the student's code);
* the cluster job `loaders`: its login-node step (stand-ins, or the real Pets, packed by the course's own pack.py),
  its verdict, and what its batch script must hold (the course checker's rules, harness/coursecheck.py, and the
  lesson's own: one task per GPU, /dev/shm).
"""
from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import re
import shlex
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import coursecheck, minipets
from harness.exercises import ROOT, ClusterJob, Exercise
from harness.exercises.cats import site_caches
from harness.failures import TODO_RAISED
from harness.offline import Ran, run_program
from harness.report import cuda_standin_env, read_files, unseen_gpu_problems
from harness.once import once_per_run

PER_BREED = 6  # 37 breeds x 6 = 222 pictures: divisible by 1, 2 and 3 tasks, a few seconds per pass on a laptop
WORLD_SIZES = (1, 2, 3)  # tasks of the simulated jobs (1: outside Slurm)
RUN_TIMEOUT_S = 300
FORMATS = ("jpeg-folder", "hdf5", "arrow")  # the names time_loaders.py prints
PACKED_FORMATS = ("hdf5", "arrow")
SHM = "/dev/shm/"  # node-local memory: where the batch script copies the packed files
FIGURE = r"(\d[\d.]*(?:e[-+]?\d+)?)"  # a printed figure: 2.31, 812.4 (an exponent is read too)
LINE = re.compile(rf"^rank (\d+)/(\d+) (\S+) from (.+): (\d+) images in {FIGURE} s = {FIGURE} images/s on (\S+)\s*$",
                  re.MULTILINE)


# --- the stand-in pictures and what they should read back as ----------------------------------------------------

def write_pictures(folder: Path, per_breed: int = PER_BREED) -> list[Path]:
    """Mini-Pets JPEGs, named like Oxford-IIIT Pets (an upper-case breed is a cat)."""
    return minipets.write_images(folder, per_breed=per_breed)


def originals(images: Path) -> list[tuple[str, bytes, int]]:
    """(file name, bytes, label) of every *.jpg in `images`, sorted by name: the order every format must keep."""
    return [(p.name, p.read_bytes(), int(p.name[0].isupper())) for p in sorted(images.glob("*.jpg"))]


def decoded(jpeg: bytes):
    """The picture as a uint8 tensor (3, height, width), as PIL decodes it."""
    import numpy as np
    import torch
    from PIL import Image

    return torch.from_numpy(np.array(Image.open(io.BytesIO(jpeg)).convert("RGB"))).permute(2, 0, 1)


def same_picture(image, jpeg: bytes) -> bool:
    """`image` is the picture `jpeg`, decoded by PIL or by torchvision (they may differ in the last bit; a Dataset
    may use either)."""
    import torch

    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8:
        return False
    reference = decoded(jpeg)
    if image.shape == reference.shape and torch.equal(image, reference):
        return True
    try:
        import warnings

        from torchvision.io import ImageReadMode, decode_image
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision 0.29 deprecates its decoders in favour of torchcodec
            reference = decode_image(torch.frombuffer(bytearray(jpeg), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except ImportError:
        return False
    return image.shape == reference.shape and torch.equal(image, reference)


# --- exercise 4a: pack.py ------------------------------------------------------------------------------------------

def run_pack(script: Path, images: Path, out: Path, cwd: Path) -> Ran:
    """`python pack.py IMAGES OUT`, as on the login node."""
    return run_program([sys.executable, str(script), str(images), str(out)], cwd=cwd, timeout=RUN_TIMEOUT_S)


def packed_problems(out: Path, images: Path) -> list[str]:
    """What differs from the contract in OUT/pets.h5 and OUT/pets.arrow (exercise 5 reads pets.h5)."""
    import h5py
    import numpy as np
    import pyarrow as pa

    want = originals(images)
    problems = []
    h5_path, arrow_path = out / "pets.h5", out / "pets.arrow"
    if not h5_path.is_file():
        problems.append(f"pack.py wrote no {h5_path.name}")
    else:
        with h5py.File(h5_path, "r") as h5:
            missing = [name for name in ("images", "labels", "names") if name not in h5]
            if missing:
                return problems + [f"pets.h5 has no dataset `{missing[0]}` (it needs images, labels and names)"]
            images_ds, labels, names = h5["images"], h5["labels"], h5["names"]
            if h5py.check_vlen_dtype(images_ds.dtype) != np.uint8:
                problems.append(f"pets.h5 `images` is {images_ds.dtype}, not variable-length uint8 "
                                "(h5py.vlen_dtype(np.uint8)): one entry per picture, its JPEG bytes")
            elif labels.dtype != np.int64:
                problems.append(f"pets.h5 `labels` is {labels.dtype}, not int64")
            elif h5py.check_string_dtype(names.dtype) is None:
                problems.append(f"pets.h5 `names` is {names.dtype}, not strings (h5py.string_dtype())")
            elif not (len(images_ds) == len(labels) == len(names) == len(want)):
                problems.append(f"pets.h5 holds {len(images_ds)} images, {len(labels)} labels and {len(names)} "
                                f"names for {len(want)} pictures")
            else:
                got_names = [n.decode() if isinstance(n, bytes) else n for n in names[:]]
                got_labels = labels[:].tolist()
                for i, (name, jpeg, label) in enumerate(want):
                    if got_names[i] != name:
                        problems.append(f"pets.h5 `names`[{i}] is {got_names[i]!r}, not {name!r} (sorted by name)")
                    elif images_ds[i].tobytes() != jpeg:
                        problems.append(f"pets.h5 `images`[{i}] is not the bytes of {name}, unchanged")
                    elif got_labels[i] != label:
                        problems.append(f"pets.h5 `labels`[{i}] is {got_labels[i]} for {name}, not {label} "
                                        "(1 = cat: the name starts with an upper-case letter)")
                    else:
                        continue
                    break
    if not arrow_path.is_file():
        return problems + [f"pack.py wrote no {arrow_path.name}"]
    try:
        table = pa.ipc.open_file(pa.memory_map(str(arrow_path))).read_all()
    except pa.ArrowInvalid as error:
        return problems + [f"pets.arrow is not an Arrow IPC file ({error})"]
    want_schema = {"name": pa.string(), "image": pa.binary(), "label": pa.int64()}
    got_schema = {field.name: field.type for field in table.schema}
    if got_schema != want_schema:
        return problems + [f"pets.arrow has the columns {got_schema}, not name: string, image: binary, label: int64"]
    if table.num_rows != len(want):
        return problems + [f"pets.arrow holds {table.num_rows} rows for {len(want)} pictures"]
    rows = zip(table.column("name").to_pylist(), table.column("image").to_pylist(), table.column("label").to_pylist())
    for i, (got, (name, jpeg, label)) in enumerate(zip(rows, want)):
        if got[0] != name:
            return problems + [f"pets.arrow row {i} is {got[0]!r}, not {name!r} (sorted by name)"]
        if got[1] != jpeg:
            return problems + [f"pets.arrow row {i} `image` is not the bytes of {name}, unchanged"]
        if got[2] != label:
            return problems + [f"pets.arrow row {i} `label` is {got[2]} for {name}, not {label}"]
    return problems


# --- exercise 4b: datasets.py --------------------------------------------------------------------------------------

def load_datasets(folder: Path):
    """The datasets.py of `folder` as a module (a name of its own: solutions/ and exercises/ may both be loaded)."""
    path = folder / "datasets.py"
    spec = importlib.util.spec_from_file_location(f"course_datasets_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def make_datasets(module, packed: Path, images: Path) -> dict:
    return {"jpeg-folder": module.FolderDataset(images), "hdf5": module.HDF5Dataset(packed / "pets.h5"),
            "arrow": module.ArrowDataset(packed / "pets.arrow")}


def dataset_problems(folder: Path, packed: Path, images: Path) -> list[str]:
    """Every sample of every Dataset of folder/datasets.py against the original file; the three agree in order.
    An exception of the student's code (a TODO) is raised, not turned into a problem, so that it shows."""
    want = originals(images)
    problems = []
    for name, dataset in make_datasets(load_datasets(folder), packed, images).items():
        if len(dataset) != len(want):
            problems.append(f"{type(dataset).__name__} has {len(dataset)} samples for {len(want)} pictures")
            continue
        for i, (file_name, jpeg, label) in enumerate(want):
            image, got_label = dataset[i]
            if not same_picture(image, jpeg):
                shape = tuple(getattr(image, "shape", ())) or type(image).__name__
                problems.append(f"{type(dataset).__name__}[{i}] is not the picture {file_name} (got {shape}, "
                                "want a uint8 tensor (3, height, width), in the order of the sorted file names)")
                break
            if int(got_label) != label:
                problems.append(f"{type(dataset).__name__}[{i}] has the label {int(got_label)} for {file_name}, "
                                f"not {label}")
                break
    return problems


def reading_problems(folder: Path, packed: Path) -> list[str]:
    """How folder/datasets.py's packed Datasets read, as the lesson asks: each picture scaled to `size`; the HDF5
    file opened once per reading process (in the first __getitem__), not once per picture; the Arrow file
    memory-mapped, so that reading pictures allocates no copy of the file (pyarrow's own allocation counter)."""
    import pyarrow as pa

    module = load_datasets(folder)
    problems = []
    for make in (module.HDF5Dataset, module.ArrowDataset):
        image = make(packed / ("pets.h5" if make is module.HDF5Dataset else "pets.arrow"), size=32)[0][0]
        if tuple(image.shape) != (3, 32, 32):
            problems.append(f"datasets.py: {make.__name__}(..., size=32)[0] is {tuple(image.shape)}, not (3, 32, 32): "
                            "pass self.size on to decode()")
    opens, real_file = [], module.h5py.File
    module.h5py.File = lambda *args, **kwargs: opens.append(args) or real_file(*args, **kwargs)
    try:
        h5 = module.HDF5Dataset(packed / "pets.h5")
        before = len(opens)
        for i in range(3):
            h5[i]
    finally:
        module.h5py.File = real_file
    if len(opens) - before > 1:
        problems.append(f"datasets.py: HDF5Dataset opened pets.h5 {len(opens) - before} times for 3 pictures: open it "
                        "once, at the first picture a process reads, and keep it (self.images)")
    size, before = (packed / "pets.arrow").stat().st_size, pa.total_allocated_bytes()
    arrow = module.ArrowDataset(packed / "pets.arrow")
    for i in range(3):
        arrow[i]
    grown = pa.total_allocated_bytes() - before
    if grown > size // 2:  # mapped: the pictures stay in the file's pages; read: about the whole file is copied
        problems.append(f"datasets.py: reading 3 pictures through ArrowDataset copied {grown:,} bytes of the "
                        f"{size:,}-byte file into memory: open it with pa.memory_map, as __init__ does")
    del arrow
    return problems


WORKER_SCRIPT = """
import json, sys, torch
from datasets import ArrowDataset, HDF5Dataset
context, packed = sys.argv[1], sys.argv[2]
seen = {}
for name, dataset in (("hdf5", HDF5Dataset(packed + "/pets.h5")), ("arrow", ArrowDataset(packed + "/pets.arrow"))):
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context=context)
    seen[name] = [[int(image.long().sum()), int(label)] for image, label in loader]
print("SEEN " + json.dumps(seen))
"""


def worker_problems(folder: Path, packed: Path, images: Path, context: str, workdir: Path) -> list[str]:
    """folder/datasets.py's HDF5 and Arrow Datasets in two DataLoader workers started by `context` (fork: Linux up
    to Python 3.13; spawn: macOS and Windows; forkserver: Linux from Python 3.14): every sample must arrive."""
    want = [[int(decoded(jpeg).long().sum()), label] for _, jpeg, label in originals(images)]
    env = {**clean_env(), "PYTHONWARNINGS": "ignore"}
    ran = run_program([sys.executable, "-c", WORKER_SCRIPT, context, str(packed)], cwd=folder, env=env,
                      report_dir=workdir / f"reports-{context}", timeout=RUN_TIMEOUT_S)
    seen = [line[5:] for line in ran.stdout.splitlines() if line.startswith("SEEN ")]
    if ran.returncode != 0 or not seen:
        last = (ran.stderr.strip() or ran.stdout.strip() or "no output").splitlines()[-1]
        todo = TODO_RAISED.search(ran.stderr)
        if todo:
            return [todo.group(1)]
        return [f"the Datasets fail in DataLoader workers started by {context} ({last}): open the file in "
                "__getitem__, in the process that reads, never in __init__"]
    problems = []
    for name, got in json.loads(seen[-1]).items():
        if got != want:
            problems.append(f"the {name} Dataset gives other samples in {context}-started DataLoader workers than "
                            "the original pictures")
    return problems


# --- exercise 4c: time_loaders.py, the tasks' shares -------------------------------------------------------------



def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Slurm's variables and the programs' knobs (a test may run inside a job)."""
    knobs = ("PETS_PACKED", "PETS_IMAGES", "WORKERS", "COURSE_REPORT_DIR", "COURSE_OFFLINE", "COURSE_REPORT_DETAIL",
             "COURSE_CUDA_STANDIN", "CUDA_VISIBLE_DEVICES")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM") and k not in knobs}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore", **extra)
    return env


@dataclass
class Shares:
    """The tasks of one simulated job step: one process of time_loaders.py per rank, as srun starts them."""
    world: int  # tasks; 0 = started without any Slurm variable (outside a job)
    root: Path

    def rank_dir(self, rank: int) -> Path:
        return self.root / f"rank-{rank}"

    def runs(self) -> list[Ran]:
        return [Ran.load(self.rank_dir(rank) / "ran.json") for rank in range(max(self.world, 1))]

    def opened(self) -> dict[int, list[str]]:
        """The picture files each rank opened (its DataLoader workers included), in order, by file name."""
        found: dict[int, list[str]] = {rank: [] for rank in range(max(self.world, 1))}
        for rank in found:
            for files in read_files(self.rank_dir(rank) / ".reports").values():
                found[rank].extend(os.path.basename(path) for path in files)
        return found

    @property
    def output(self) -> str:
        """What srun would collect: every rank's output."""
        return "".join(run.stdout for run in self.runs())

    @property
    def reports(self) -> list:
        return sorted((report for run in self.runs() for report in run.reports), key=lambda r: r.started)


def run_shares(script_dir: Path, packed: Path, images: Path | None, world: int, root: Path, *, workers: int = 0,
               step: int = 0, gpu_per_task: bool = False) -> Shares:
    """Start time_loaders.py of `script_dir` once per rank, two at a time, with SLURM_NTASKS/SLURM_PROCID set (none
    at all when `world` is 0), the reporter noting every picture file they open, reading `packed` and (when given)
    the JPEG folder `images`. `gpu_per_task`: the ranks are tasks of one node that psslurm gave one GPU each
    (CUDA_VISIBLE_DEVICES=<local id>), on the reporter's CUDA stand-in."""
    shares = Shares(world, root)
    host = socket.gethostname()

    def one(rank: int) -> None:
        slurm = {} if world == 0 else {
            "SLURM_NTASKS": str(world), "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank), "SLURM_NODEID": "0",
            "SLURM_STEP_ID": str(step), "SLURM_JOB_ID": "4242", "SLURMD_NODENAME": host}
        gpus = {"CUDA_VISIBLE_DEVICES": str(rank), **cuda_standin_env(gpus_real=False)} if gpu_per_task else {}
        env = clean_env(COURSE_REPORT_DETAIL="reads=*.jpg", **slurm, **gpus)
        folder = ["--images", str(images)] if images else []
        ran = run_program([sys.executable, str(script_dir / "time_loaders.py"), str(packed), *folder,
                           "--workers", str(workers)], cwd=shares.rank_dir(rank), env=env, timeout=RUN_TIMEOUT_S)
        ran.save(shares.rank_dir(rank) / "ran.json")

    with ThreadPoolExecutor(max_workers=2) as pool:  # two at a time: a laptop's cores, and this machine's
        list(pool.map(one, range(max(world, 1))))
    return shares


def todo_or_failure(runs: list[Ran]) -> list[str]:
    """A rank that failed: the TODO it raised, else its last error line."""
    for rank, ran in enumerate(runs):
        if ran.returncode != 0:
            todo = TODO_RAISED.search(ran.stderr)
            if todo:
                return [todo.group(1)]
            last = (ran.stderr.strip() or "no output").splitlines()[-1]
            return [f"time_loaders.py failed as rank {rank}: {last}"]
    return []


def printed(output: str) -> list[dict]:
    """Every `rank R/W FORMAT from PATH: N images in S s = X images/s on DEVICE` line."""
    return [{"rank": int(m[1]), "ntasks": int(m[2]), "format": m[3], "path": m[4].strip(), "images": int(m[5]),
             "seconds": float(m[6]), "rate": float(m[7]), "device": m[8]} for m in LINE.finditer(output)]


def share_problems(shares: Shares, names: list[str]) -> list[str]:
    """The ranks together read every picture once, each its own share: from the files they opened (the JPEG
    folder) and the counts they printed (every format)."""
    runs = shares.runs()
    failed = todo_or_failure(runs)
    if failed:
        return failed
    world = max(shares.world, 1)
    share = math.ceil(len(names) / world)  # DistributedSampler pads the last share with repeats
    problems = []
    lines = printed(shares.output)
    for rank in range(world):
        mine = {line["format"]: line for line in lines if line["rank"] == rank}
        missing = [f for f in FORMATS if f not in mine]
        if missing:
            return [f"rank {rank} printed no `rank {rank}/{world} {missing[0]} from ...: N images in S s = X "
                    f"images/s on DEVICE` line"]
        wrong = [line for line in mine.values() if line["ntasks"] != world]
        if wrong:
            return [f"rank {rank} says it is one of {wrong[0]['ntasks']} tasks, but SLURM_NTASKS is {world}"]
        for line in mine.values():
            if line["images"] != share:
                many = " (all of them: each task must read only its share, through a DistributedSampler)" \
                    if line["images"] == len(names) and world > 1 else ""
                problems.append(f"rank {rank} of {world} read {line['images']} {line['format']} images{many}; its "
                                f"share of {len(names)} is {share}")
    if problems:
        return problems[:1]
    opened = shares.opened()
    seen: dict[str, list[int]] = {}
    for rank, files in opened.items():
        for name in set(files):
            seen.setdefault(name, []).append(rank)
    twice = sorted(name for name, ranks in seen.items() if len(ranks) > 1)
    never = sorted(set(names) - set(seen))
    if len(names) % world == 0 and twice:
        ranks = seen[twice[0]]
        problems.append(f"{len(twice)} pictures were read by more than one rank (e.g. {twice[0]} by ranks {ranks}): "
                        "each rank must read its own share (DistributedSampler with rank=SLURM_PROCID)")
    if never:
        problems.append(f"{len(never)} pictures were read by no rank (e.g. {never[0]}): together the ranks must read "
                        "the whole data set (num_replicas=SLURM_NTASKS)")
    return problems


# --- the cluster job ---------------------------------------------------------------------------------------------

def sbatch_problems(script: Path) -> list[str]:
    """What sbatch would get wrong without a word, by the course checker's rules (harness/coursecheck.py):
    merge-conflict markers, #SBATCH lines after the first command (sbatch ignores them), GPUs not asked for, cores
    that never reach srun, several tasks per node picking cuda:<local id>."""
    parsed, sites = coursecheck.read_sbatch(script), coursecheck.read_sites(ROOT)
    found = coursecheck.conflict_markers(script.parent, [script]) + coursecheck.sbatch_order(parsed, script.name)
    found += coursecheck.gpus(parsed, script.name, sites) + coursecheck.srun_cpus(parsed, script.name, sites)
    found += coursecheck.local_id_gpus(parsed, script.name, ROOT)  # the programs beside it first
    return [str(problem) for problem in found]


def loaders_sbatch_problems(script: Path) -> list[str]:
    """The lesson's batch script: the checker's rules, and one task per GPU, a quarter of the node's cores each,
    all four GPUs, the packed files copied to node-local memory."""
    problems = sbatch_problems(script)
    options = coursecheck.read_sbatch(script).options
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
    value = None
    script = result.workdir / "loaders.sbatch"
    if script.is_file():
        value = coursecheck.read_sbatch(script).options.get("ntasks-per-node", (0, None))[1]
    for key, given in coursecheck.directive_options(" ".join(result.settings.get("sbatch_args", []))):
        if key == "ntasks-per-node":
            value = given
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
    """The login-node step: pictures (stand-ins on the test cluster, the real Pets elsewhere), packed by the
    course's own pack.py staged in `workdir`; the job gets both places in PETS_IMAGES and PETS_PACKED."""
    settings = run.site.job("loaders").values
    if run.site.caches.prepare == "minipets":
        images = workdir / "images"
        run.log(f"writing {len(minipets.BREEDS) * settings['standin_per_breed']} stand-in pictures to {images}")
        write_pictures(images, settings["standin_per_breed"])
    else:
        images = site_caches(run).images  # the real Pets that `python cats.py --prefetch` downloaded (2b)
        if not any(images.glob("*.jpg")):
            raise RuntimeError(f"no Pets pictures in {images}: run `python cats.py --prefetch` on the login node "
                               "first (exercise 2b)")
    packed = Path(run.site.expand(settings["packed_dir"])) if settings["packed_dir"] else workdir / "packed"
    if settings["packed_dir"] and (packed / "pets.h5").is_file() and (packed / "pets.arrow").is_file():
        # Packed once, kept (the real Pets make 1.6 GB). Never rewritten here: a job of this run (exercise 5's
        # reads the same folder) may be reading it already.
        run.log(f"reusing {packed} (packed_dir of {run.site.path.name}; delete it to pack again)")
    else:
        python = "python" if run.site.setup else shlex.quote(sys.executable)  # no set-up: the harness's Python
        lines = [*run.site.setup, f"cd {shlex.quote(str(workdir))}",
                 f"{python} pack.py {shlex.quote(str(images))} {shlex.quote(str(packed))}"]
        run.login_shell("packing", lines, run.login_env(), workdir / "pack.log")
    count = sum(1 for _ in images.glob("*.jpg"))
    (workdir / "prepared.json").write_text(json.dumps({"images": str(images), "packed": str(packed), "count": count}))
    return {"PETS_IMAGES": str(images), "PETS_PACKED": str(packed), **cuda_standin_env(run.site.gpus_real)}


# --- fixtures ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pictures:
    """The stand-in pictures, and the same packed by the reference solutions/pack.py."""
    images: Path
    packed: Path

    @property
    def names(self) -> list[str]:
        return sorted(p.name for p in self.images.glob("*.jpg"))


@pytest.fixture(scope="session")
def formats_pictures(tmp_path_factory: pytest.TempPathFactory) -> Pictures:
    """Drawn and packed once per test run (shared by the xdist workers). The packing is the reference one, so that
    a check of datasets.py does not depend on the student's pack.py."""
    with once_per_run(tmp_path_factory, "formats-pictures") as root:
        pictures = Pictures(root / "images", root / "packed")
        if not (root / "complete").exists():
            write_pictures(pictures.images)
            ran = run_pack(ROOT / "solutions" / "pack.py", pictures.images, pictures.packed, root / "pack")
            if ran.returncode != 0:
                raise RuntimeError("the reference solutions/pack.py failed:\n" + ran.explain())
            (root / "complete").touch()
    return pictures


@pytest.fixture(scope="session")
def formats_pack_run(target_dir: Path, formats_pictures: Pictures, tmp_path_factory: pytest.TempPathFactory):
    """The target's pack.py run once per test run on the stand-ins: (the run, its OUT folder)."""
    with once_per_run(tmp_path_factory, f"formats-pack-{target_dir.name}") as root:
        record = root / "ran.json"
        if not record.exists():
            run_pack(target_dir / "pack.py", formats_pictures.images, root / "packed", root / "work").save(record)
        return Ran.load(record), root / "packed"


@pytest.fixture(scope="session")
def formats_shares(target_dir: Path, formats_pictures: Pictures, tmp_path_factory: pytest.TempPathFactory):
    """The target's time_loaders.py as simulated jobs of 1 (outside Slurm), 2 (two DataLoader workers per task) and
    3 tasks, once per test run: {world: Shares}."""
    found = {}
    for world in WORLD_SIZES:
        with once_per_run(tmp_path_factory, f"formats-shares-{target_dir.name}-{world}") as root:
            if not (root / "complete").exists():
                run_shares(target_dir, formats_pictures.packed, formats_pictures.images, 0 if world == 1 else world,
                           root, workers=2 if world == 2 else 0)
                (root / "complete").touch()
            found[world] = Shares(0 if world == 1 else world, root)
    return found


EXERCISE = Exercise(
    key="formats", number=4, title="feed the GPUs fast (packed data formats)", day=2, lesson="book/data-formats.md",
    programs=("pack.py", "datasets.py", "time_loaders.py"), tests=("tests/test_formats.py",),
    cluster_jobs=(ClusterJob(name="loaders", sbatch="loaders.sbatch", programs=("pack.py", "datasets.py",
                                                                                "time_loaders.py"),
                             check=check_loaders_job, gpus=True, needs_venv=True, prepare=prepare_loaders,
                             settings={"standin_per_breed": (int, 20), "packed_dir": (str, "")},
                             figures={f"{name}_{place}_images_per_s": "higher" for place, names in
                                      (("fs", FORMATS), ("shm", PACKED_FORMATS)) for name in names},
                             cost="1 node, about 3 min (time limit 15 min)"),),
)
