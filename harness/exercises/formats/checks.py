"""Exercise 4's checks of pack.py (4a) and datasets.py (4b), as functions that return problems: tests/test_formats.py
runs each one on the course's files and on deliberately broken copies. The packed layout is a contract: exercise 5
reads pets.h5.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from harness.exercises.formats.pictures import decoded, originals, same_picture
from harness.failures import TODO_RAISED
from harness.offline import program_env, run_program

RUN_TIMEOUT_S = 300


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
    env = program_env()
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
