"""Exercise 4b: one PyTorch Dataset per format (a folder of JPEGs, pack.py's two files), all giving (image, label)
in the same order. An image is a uint8 tensor (3, height, width), or (3, size, size) when `size` is given."""
import io
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import torch
from PIL import Image

def decode(jpeg, size):  # the CPU's share of the work: uncompress the picture (and scale it to size x size)
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return torch.from_numpy(np.array(image.resize((size, size)) if size else image)).permute(2, 0, 1)

class FolderDataset(torch.utils.data.Dataset):  # one file per picture: one open (a metadata request) each
    def __init__(self, folder, size=None):
        self.paths, self.size = sorted(Path(folder).glob("*.jpg")), size
        self.labels = [int(path.name[0].isupper()) for path in self.paths]  # 1: a cat (upper-case breed)
    def __len__(self):
        return len(self.labels)
    def __getitem__(self, i):
        return decode(self.paths[i].read_bytes(), self.size), self.labels[i]

class HDF5Dataset(FolderDataset):  # the same __len__; only the process that reads pictures opens the file
    def __init__(self, path, size=None):
        with h5py.File(path, "r") as h5:  # here only for the labels: an open file must not go to the workers
            self.path, self.size, self.images, self.labels = path, size, None, h5["labels"][:].tolist()
    def __getitem__(self, i):
        # --- your work ---
        # TODO: open pets.h5 the first time this process reads a picture (keep its dataset "images" in
        # self.images), then give back picture i, decoded, and its label. Why not open the file in __init__?
        raise NotImplementedError("TODO: HDF5Dataset.__getitem__: open the file when first needed, read picture i")
        # --- end of your work ---

class ArrowDataset(FolderDataset):
    def __init__(self, path, size=None):
        self.path, self.size, self.table = path, size, None
        self.labels = pa.ipc.open_file(pa.memory_map(str(path))).read_all().column("label").to_pylist()
    def __getitem__(self, i):
        # --- your work ---
        # TODO: the first time, map pets.arrow into memory (pa.memory_map) and read it as a table (self.table);
        # then give back the bytes of row i of the column "image", decoded, and its label.
        raise NotImplementedError("TODO: ArrowDataset.__getitem__: memory-map the file when first needed, read row i")
        # --- end of your work ---
