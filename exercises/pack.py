"""Exercise 4a: pack a folder of JPEGs into two large files, one HDF5 and one Apache Arrow. On the login node:
python pack.py ~/.fastai/data/oxford-iiit-pet/images packed    (writes packed/pets.h5 and packed/pets.arrow)"""
import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa

if len(sys.argv) != 3:
    sys.exit("usage: python pack.py IMAGES_FOLDER OUT_FOLDER")
images, out = Path(sys.argv[1]), Path(sys.argv[2])
if not images.is_dir():
    sys.exit(f"pack.py: {images} is not a folder: give the folder that holds the *.jpg images")
paths = sorted(images.glob("*.jpg"))  # sorted by name: every format holds the pictures in the same order
if not paths:
    sys.exit(f"pack.py: {images} holds no *.jpg files: give the folder that holds the images")
out.mkdir(parents=True, exist_ok=True)
names = [path.name for path in paths]
labels = [int(name[0].isupper()) for name in names]  # Pets: cat breeds start with a capital letter

with h5py.File(out / "pets.h5", "w") as h5:
    # --- your work ---
    # TODO: three datasets in `h5`: "images" (one entry per picture: the JPEG file's bytes, unchanged, as uint8),
    # "labels" (int64) and "names" (UTF-8 strings). The pictures differ in size, so each entry of "images" has its own
    # length: h5.create_dataset("images", (len(paths),), dtype=h5py.vlen_dtype(np.uint8)), then one entry at a time,
    # np.frombuffer(path.read_bytes(), dtype=np.uint8); names: dtype=h5py.string_dtype("utf-8")
    # (https://docs.h5py.org/en/stable/special.html). Decide: decode the JPEGs first, or store them as they are?
    raise NotImplementedError("TODO: write the datasets images, labels and names into pets.h5")
    # --- end of your work ---

schema = pa.schema([("name", pa.string()), ("image", pa.binary()), ("label", pa.int64())])
with pa.OSFile(str(out / "pets.arrow"), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
    for start in range(0, len(paths), 1000):  # a record batch of 1000 pictures at a time: little memory
        # --- your work ---
        # TODO: the next (at most) 1000 pictures as one record batch of `schema`: names, JPEG bytes, labels, in the
        # schema's order: writer.write_batch(pa.record_batch([names_part, jpegs_part, labels_part], schema=schema))
        # (https://arrow.apache.org/docs/python/ipc.html). Why not all pictures in one batch?
        raise NotImplementedError("TODO: write the pictures from `start` on as a record batch into pets.arrow")
        # --- end of your work ---
print(f"packed {len(paths)} images into {out / 'pets.h5'} and {out / 'pets.arrow'}")
