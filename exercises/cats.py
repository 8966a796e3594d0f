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
# --- your work ---
# TODO: dls, fastai's data loaders over the pictures in `path`: labelled by is_cat from the file name, 20 % kept
# back for validation (seed 42, so every run holds back the same pictures), each picture resized to SIZE pixels.
raise NotImplementedError("TODO: build the data loaders `dls` (ImageDataLoaders, labelled by file name)")
# --- end of your work ---
print("On the login node, this will download resnet34")
# --- your work ---
# TODO: learn, a vision learner on dls: a resnet34 pretrained on ImageNet, reporting accuracy and error_rate,
# keeping its models/ folder in the current folder.
raise NotImplementedError("TODO: build the learner `learn` (vision_learner with resnet34)")
# --- end of your work ---
# --- your work ---
# TODO: `python cats.py --prefetch` on the login node must stop here. Which downloads have happened by now,
# and why must the training not start?
raise NotImplementedError("TODO: stop here (exit 0) when the script runs with --prefetch, before any training")
# --- end of your work ---
cbs = [SaveModelCallback(), TensorBoardCallback("runs", trace_model=False)]
learn.unfreeze()
learn.fit_one_cycle(EPOCHS, cbs=cbs)
