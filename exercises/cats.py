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
    raise NotImplementedError("TODO: is_cat(name): True for a picture of a cat. Look at a few file names in `path`: "
                              "what tells a cat breed from a dog breed?")
# --- end of your work ---
# Labelled by is_cat from the file name, 20 % held back for validation (seed 42: the same pictures every run), each
# picture resized to SIZE pixels: https://docs.fast.ai/vision.data.html#imagedataloaders.from_name_func
dls = ImageDataLoaders.from_name_func(path, get_image_files(path), valid_pct=0.2, seed=42,
                                      label_func=is_cat, item_tfms=Resize(SIZE))
print("On the login node, this will download resnet34")
# resnet34 pretrained on ImageNet (downloads its weights); path=".": models/ goes into this folder, not the cache.
learn = vision_learner(dls, resnet34, metrics=[accuracy, error_rate], path=".")  # docs.fast.ai/vision.learner.html
# --- your work ---
# TODO: `python cats.py --prefetch` on the login node must stop here. Which downloads have happened by now,
# and why must the training not start?
raise NotImplementedError("TODO: stop here (exit 0) when the script runs with --prefetch, before any training")
# --- end of your work ---
cbs = [SaveModelCallback(), TensorBoardCallback("runs", trace_model=False)]
learn.unfreeze()
learn.fit_one_cycle(EPOCHS, cbs=cbs)
