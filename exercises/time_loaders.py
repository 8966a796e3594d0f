"""Exercise 4c: every task of the job reads its share of the data set once in each format, and says how fast.
srun python time_loaders.py [PACKED] [--images JPEGS] [--workers N]    (PACKED: $PETS_PACKED, else ./packed)"""
import argparse
import os
import sys
import time

import torch
from torch.utils.data import DataLoader, DistributedSampler

from datasets import ArrowDataset, FolderDataset, HDF5Dataset

parser = argparse.ArgumentParser(description="Time one pass through the data set in each format.")
parser.add_argument("packed", nargs="?", default=os.environ.get("PETS_PACKED", "packed"),
                    help="the folder holding pets.h5 and pets.arrow (default: $PETS_PACKED, else ./packed)")
parser.add_argument("--images", help="a folder of JPEGs to time as well, e.g. the one pack.py packed")
parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", 0)), help="DataLoader workers")
args = parser.parse_args()
formats = {"hdf5": (HDF5Dataset, f"{args.packed}/pets.h5"), "arrow": (ArrowDataset, f"{args.packed}/pets.arrow")}
formats = {"jpeg-folder": (FolderDataset, args.images), **formats} if args.images else formats
missing = [path for _, path in formats.values() if not os.path.exists(path)]
if missing:
    sys.exit(f"time_loaders.py: {missing[0]} does not exist: pack the images first (pack.py, exercise 4a)")
# --- your work ---
# TODO: ntasks, rank: how many tasks srun started, and which one this is. Slurm tells each task in environment
# variables; started without srun (a laptop, the login node) there are none: then 1 task, rank 0.
raise NotImplementedError("TODO: ntasks and rank from Slurm's environment variables; without srun: 1 and 0")
# --- end of your work ---
# Each task of a node takes its own GPU among those it can see. On JURECA-DC each of several tasks on a node sees
# only its own GPU (cuda:0); where a task sees all of them, SLURM_LOCALID (0, 1, 2, 3 on a node) picks one.
device = torch.device(f"cuda:{int(os.environ.get('SLURM_LOCALID', 0)) % torch.cuda.device_count()}"
                      if torch.cuda.is_available() else "cpu")
for name, (Format, path) in formats.items():
    dataset = Format(path, size=224)  # every picture scaled to 224 x 224 pixels, as for the cat classifier
    # --- your work ---
    # TODO: loader: batches of 64 pictures from this task's share of `dataset` only (the tasks together read
    # every picture once), read by args.workers worker processes.
    raise NotImplementedError("TODO: a DataLoader over this task's share of the data set: a DistributedSampler")
    # --- end of your work ---
    count, start = 0, time.perf_counter()
    for images, labels in loader:
        count += len(images.to(device))  # onto the GPU, where training would use them
    seconds = time.perf_counter() - start
    print(f"rank {rank}/{ntasks} {name} from {path}: {count} images in {seconds:.2f} s = "
          f"{count / seconds:.1f} images/s on {device}", flush=True)  # .1f: no real rate reads as 0
