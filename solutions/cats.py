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
# Labelled by is_cat from the file name, 20 % held back for validation (seed 42: the same pictures every run), each
# picture resized to SIZE pixels: https://docs.fast.ai/vision.data.html#imagedataloaders.from_name_func
dls = ImageDataLoaders.from_name_func(path, get_image_files(path), valid_pct=0.2, seed=42,
                                      label_func=is_cat, item_tfms=Resize(SIZE))
print("On the login node, this will download resnet34")
# resnet34 pretrained on ImageNet (downloads its weights); path=".": models/ goes into this folder, not the cache.
learn = vision_learner(dls, resnet34, metrics=[accuracy, error_rate], path=".")  # docs.fast.ai/vision.learner.html
# --- your work ---
if "--prefetch" in sys.argv:  # both downloads are done; training belongs on a compute node
    print("Caches are filled; now submit the training job.")
    sys.exit()
# --- end of your work ---
cbs = [SaveModelCallback(), TensorBoardCallback("runs", trace_model=False)]
learn.unfreeze()
learn.fit_one_cycle(EPOCHS, cbs=cbs)
