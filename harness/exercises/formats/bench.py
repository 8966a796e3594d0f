"""Part loader-formats: images/s and file opens per second of one pass through a data set in each format.

The stand-in pictures (harness.minipets: thousands of small JPEGs, a few KB each) are written to a temporary folder,
packed into pets.h5 and pets.arrow by the course's own solutions/pack.py, and into an LMDB database by this part
(the lesson's optional third format). Each pass is one full epoch of a DataLoader over a Dataset of
solutions/datasets.py (LMDB: the one below), in random order as in training, batches of 64, with 0, 1 and 2 worker
processes, in a fresh Python process: once with a warm page cache (the data was read just before) and once cold
(`sync; echo 3 > /proc/sys/vm/drop_caches` first, which needs root; otherwise warm only, and the notes say so).
The pictures are decoded but not scaled: what differs between the formats is how the bytes are reached.

File opens are counted in a separate pass of the same kind run under `strace -f -e trace=open,openat` (every
process, the DataLoader workers included): the opens of files inside the data set's folder or file, the Python
imports left out. Per second means: that count divided by the seconds of the timed pass.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Check, Part, Skipped
from harness.exercises import ROOT

SOLUTIONS = ROOT / "solutions"
FORMATS = ("jpeg-folder", "hdf5", "arrow", "lmdb")
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
TARGET_RATIO = 1.0  # a packed format should read at least as fast as the folder it came from (warm, 0 workers)
TARGET_OPENS_RATIO = 1000.0  # the metadata load a packed file saves: opens of the folder per open of the file


# --- the third format: LMDB, one key per picture -----------------------------------------------------------------

def pack_lmdb(images: Path, out: Path) -> Path:
    """Every *.jpg of `images`, sorted by name, under the keys 00000000, 00000001, ...; the labels under `labels`."""
    import lmdb
    import numpy as np

    paths = sorted(images.glob("*.jpg"))
    size = sum(p.stat().st_size for p in paths)
    env = lmdb.open(str(out), map_size=2 * size + (64 << 20), subdir=True)
    with env.begin(write=True) as txn:
        for i, path in enumerate(paths):
            txn.put(f"{i:08d}".encode(), path.read_bytes())
        txn.put(b"labels", np.array([int(p.name[0].isupper()) for p in paths], dtype=np.int64).tobytes())
    env.close()
    return out


def lmdb_dataset_class(datasets):
    """An LMDB Dataset in the style of datasets.py (its `decode`, its FolderDataset's __len__): the database is
    opened lazily, by the process that reads."""
    import lmdb
    import numpy as np

    class LMDBDataset(datasets.FolderDataset):
        def __init__(self, path, size=None):
            self.path, self.size, self.env = path, size, None
            env = lmdb.open(str(path), readonly=True, lock=False)
            with env.begin() as txn:
                self.labels = np.frombuffer(txn.get(b"labels"), dtype=np.int64).tolist()
            env.close()

        def __getitem__(self, i):
            if self.env is None:
                self.env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False)
            with self.env.begin() as txn:
                jpeg = txn.get(f"{i:08d}".encode())
            return datasets.decode(jpeg, self.size), self.labels[i]

    return LMDBDataset


def load_course_datasets():
    spec = importlib.util.spec_from_file_location("course_datasets", SOLUTIONS / "datasets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def one_pass(fmt: str, path: str, workers: int) -> dict:
    """In this process: one epoch in random order, batches of 64; images and seconds (workers' start included)."""
    import torch

    torch.set_num_threads(1)
    datasets = load_course_datasets()
    if fmt == "lmdb":
        dataset = lmdb_dataset_class(datasets)(path)
    else:
        dataset = {"jpeg-folder": datasets.FolderDataset, "hdf5": datasets.HDF5Dataset,
                   "arrow": datasets.ArrowDataset}[fmt](path)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0))
    count, start = 0, time.perf_counter()
    for images, _ in loader:
        count += len(images)
    return {"images": count, "seconds": time.perf_counter() - start}


# --- the driver ------------------------------------------------------------------------------------------------------

def can_drop_caches() -> str:
    """"" when this process may empty the page cache, else why not."""
    if os.geteuid() != 0:
        return "not root"
    try:
        subprocess.run(["sync"], check=True)
        DROP_CACHES.write_text("3\n")
        return ""
    except OSError as error:
        return f"{DROP_CACHES}: {error.strerror or error}"


def child(fmt: str, path: Path, workers: int, strace_log: Path | None = None) -> dict:
    argv = [sys.executable, "-m", "harness.exercises.formats.bench", "pass", fmt, str(path), str(workers)]
    if strace_log is not None:
        argv = ["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", str(strace_log), *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    found = [line for line in done.stdout.splitlines() if line.startswith("PASS ")]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"pass {fmt} with {workers} workers failed: {(done.stderr.strip() or 'no output')[-400:]}")
    return json.loads(found[-1][5:])


def data_opens(log: Path, data: Path) -> int:
    """Successful opens of files inside `data` (a folder, or the one file) in an strace log."""
    inside = str(data)
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(r'open(?:at)?\((?:[^,]+, )?"([^"]+)"', line)
        if match and match[1].startswith(inside) and "= -1" not in line and "resumed" not in line:
            count += 1
    return count


def run(per_breed: int = 100, workers: tuple[int, ...] = (0, 1, 2)) -> Part:
    try:
        import h5py  # noqa: F401
        import lmdb  # noqa: F401
        import pyarrow  # noqa: F401
        import torch  # noqa: F401

        from harness import minipets
    except ImportError as error:
        raise Skipped(f"cannot import {error.name} (install requirements.txt into .venv)") from None
    for program in ("pack.py", "datasets.py"):
        if not (SOLUTIONS / program).is_file():
            raise Skipped(f"solutions/{program} is missing")
    strace = shutil.which("strace")
    cold_off = can_drop_caches()
    caches = ("warm",) if cold_off else ("warm", "cold")
    part = Part("loader-formats", f"one pass through {per_breed * len(minipets.BREEDS)} stand-in JPEGs per format "
                "(DataLoader, batches of 64, random order, 1 task)",
                headers=["format", "workers", "cache", "images/s", "vs folder", "data-file opens", "opens/s"])
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
        images = Path(tmp) / "images"
        minipets.write_images(images, per_breed=per_breed)
        packed = Path(tmp) / "packed"
        done = subprocess.run([sys.executable, str(SOLUTIONS / "pack.py"), str(images), str(packed)],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise Skipped(f"solutions/pack.py failed: {done.stderr.strip()[-300:]}")
        paths = {"jpeg-folder": images, "hdf5": packed / "pets.h5", "arrow": packed / "pets.arrow",
                 "lmdb": pack_lmdb(images, packed / "pets.lmdb")}
        sizes = {f: (sum(p.stat().st_size for p in paths[f].glob("*")) if paths[f].is_dir()
                     else paths[f].stat().st_size) for f in FORMATS}
        rates: dict[tuple, float] = {}
        opens: dict[tuple, int] = {}
        for n in workers:
            for fmt in FORMATS:
                if strace:
                    log = Path(tmp) / f"strace-{fmt}-{n}.log"
                    child(fmt, paths[fmt], n, strace_log=log)
                    opens[(fmt, n)] = data_opens(log, paths[fmt])
                for cache in caches:
                    if cache == "cold":
                        can_drop_caches()
                    else:
                        child(fmt, paths[fmt], n)  # read once, so the timed pass finds everything cached
                    result = child(fmt, paths[fmt], n)
                    rates[(fmt, n, cache)] = result["images"] / result["seconds"]
        for cache in caches:
            for n in workers:
                for fmt in FORMATS:
                    rate = rates[(fmt, n, cache)]
                    count = opens.get((fmt, n))
                    part.rows.append([fmt, n, cache, rate, f"{rate / rates[('jpeg-folder', n, cache)]:.2f}x",
                                      count if count is not None else "-",
                                      round(count * rate / (per_breed * len(minipets.BREEDS)), 1)
                                      if count is not None else "-"])
    for fmt in ("hdf5", "arrow", "lmdb"):
        part.checks.append(Check(f"{fmt} / folder, warm, 0 workers", rates[(fmt, 0, "warm")]
                                 / rates[("jpeg-folder", 0, "warm")], TARGET_RATIO, unit="x"))
    if opens:
        part.checks.append(Check(f"folder / hdf5 file opens per pass, {max(workers)} workers", opens[("jpeg-folder", max(workers))]
                                 / max(1, opens[("hdf5", max(workers))]), TARGET_OPENS_RATIO, unit="x"))
    total = per_breed * len(minipets.BREEDS)
    part.notes.append("sizes on disk: " + ", ".join(f"{f} {sizes[f] / 1e6:.1f} MB" for f in FORMATS)
                      + f"; {total} pictures of {minipets.IMAGE_SIZE[0]}x{minipets.IMAGE_SIZE[1]} pixels.")
    if strace:
        part.notes.append("opens: successful open/openat calls on files inside the data set's folder or file, every "
                          "process of the pass (strace -f), Python's imports left out; opens/s = opens x images/s / "
                          "pictures. strace slows a pass, so the opens come from a separate, untimed pass.")
    else:
        part.notes.append("opens: not counted (strace is not installed: apt-get install strace).")
    if cold_off:
        part.notes.append(f"cold page cache: not measured ({cold_off}: emptying it needs root and a writable "
                          f"{DROP_CACHES}); every figure is warm.")
    else:
        part.notes.append("cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before the pass (the data set, but also "
                          "every other cached file of this machine, must come from the disk again).")
    part.notes.append(
        "HDF5 below the folder when warm: h5py spends tens of microseconds on each variable-length entry it reads, "
        "about as long as a tiny stand-in picture takes to decode. A real Pets picture (about 100 KB) takes "
        "milliseconds to decode, and the difference disappears; cold, the folder pays for its per-file disk reads.")
    part.notes.append(
        "Reading: the folder costs one open per picture, in every worker that reads it; a packed file costs one "
        "open per process (workers included), whatever the number of pictures. On a local disk an open is a few "
        "microseconds, so the formats differ little here. On a parallel file system (GPFS at JSC) every open is a "
        "request to a metadata server shared by every user of the machine: the folder's opens per second, "
        "multiplied by the GPUs of a large job, is the load it puts there, and a packed file's is next to none.")
    return part


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "pass":
        print("PASS " + json.dumps(one_pass(sys.argv[2], sys.argv[3], int(sys.argv[4]))), flush=True)
    else:
        sys.exit("usage: python -m harness.exercises.formats.bench pass FORMAT PATH WORKERS (one pass; the part runs from "
                 "python -m bench)")
