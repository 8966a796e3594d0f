"""Exercise 2: tell cats from dogs with fastai. On the login node (internet, no training): python cats.py --prefetch
Then, from this folder: sbatch ../slurm/fastai.sbatch. A short try on a CPU: EPOCHS=1 SIZE=64 python cats.py"""
import os
import sys

from fastai.callback.tensorboard import TensorBoardCallback
from fastai.vision.all import *

EPOCHS, SIZE = int(os.environ.get("EPOCHS", 6)), int(os.environ.get("SIZE", 224))  # the course: 6 epochs, 224 px

print("Downloading dataset...")
path = untar_data(URLs.PETS) / "images"
print("Finished downloading dataset")
# --- your work ---
def is_cat(name):
    return name[0].isupper()  # cat breeds are the Pets file names that start with a capital letter
# --- end of your work ---
# --- your work ---
dls = ImageDataLoaders.from_name_func(path, get_image_files(path), valid_pct=0.2, seed=42,
                                      label_func=is_cat, item_tfms=Resize(SIZE))
# --- end of your work ---
print("On the login node, this will download resnet34")
# --- your work ---
learn = vision_learner(dls, resnet34, metrics=[accuracy, error_rate], path=".")  # path: models/ goes here
# --- end of your work ---
# --- your work ---
if "--prefetch" in sys.argv:  # both downloads are done; training belongs on a compute node
    print("Caches are filled; now submit the training job.")
    sys.exit()
# --- end of your work ---
cbs = [SaveModelCallback(), TensorBoardCallback("runs", trace_model=False)]
learn.unfreeze()
learn.fit_one_cycle(EPOCHS, cbs=cbs)
