"""Exercise 2: train a cat-or-not classifier with fastai on a compute node.

On the login node (it has internet), fill the caches first, without training:
    python cats.py --prefetch
On a compute node (no internet), train from the filled caches:
    sbatch fastai.sbatch            # runs `srun python cats.py`

Options (defaults are the course's values): --epochs 6 --size 224 --batch-size 64 --arch resnet34,
--workers N (data-loader processes; default $SLURM_CPUS_PER_TASK), --no-fp16 (mixed precision
is used on a GPU otherwise). The best model lands in models/model.pth and the TensorBoard logs
in runs/, both in the current directory. The last line is a machine-readable summary:
    RESULT accuracy=... error_rate=... epochs=... seconds_per_epoch=... images_per_second=... device=...
"""
import argparse
import os
import sys
import time

import torch
from fastai.callback.core import Callback
from fastai.callback.fp16 import MixedPrecision  # noqa: F401  (adds Learner.to_fp16)
from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (adds Learner.fit_one_cycle)
from fastai.callback.tensorboard import TensorBoardCallback
from fastai.callback.tracker import SaveModelCallback
from fastai.data.external import URLs, untar_data
from fastai.data.transforms import get_image_files
from fastai.metrics import accuracy, error_rate
from fastai.vision.augment import Resize
from fastai.vision.data import ImageDataLoaders
from fastai.vision.learner import vision_learner
from torchvision import models

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def default_workers() -> int:
    """Slurm tells a job how many CPUs it got; outside a job, stay modest."""
    slurm_cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    return int(slurm_cpus) if slurm_cpus else min(8, os.cpu_count() or 1)


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad options end in one line that says what to fix, not the full usage text."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args() -> argparse.Namespace:
    parser = OneLineErrorParser(description="Train a cat classifier on the Oxford-IIIT Pet images with fastai.")
    parser.add_argument("--epochs", type=positive_int, default=6, help="training epochs (default: 6)")
    parser.add_argument("--size", type=positive_int, default=224, help="image side in pixels (default: 224)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="images per batch (default: 64)")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="resnet34", help="network (default: resnet34)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="data-loader processes (default: $SLURM_CPUS_PER_TASK, else up to 8)")
    parser.add_argument("--no-fp16", action="store_true", help="train in float32 even on a GPU")
    parser.add_argument("--prefetch", action="store_true",
                        help="download the data set and the pretrained weights, then stop (login node)")
    args = parser.parse_args()
    if args.workers < 0:
        parser.error(f"argument --workers: must be 0 or more, not {args.workers}")
    return args


class Throughput(Callback):
    """Measures wall-clock seconds per epoch and training images per second."""

    def before_fit(self):
        self.epoch_seconds, self.train_seconds, self.train_images = [], 0.0, 0

    def before_epoch(self):
        self.epoch_start = time.perf_counter()

    def before_train(self):
        self.train_start = time.perf_counter()

    def after_batch(self):
        if self.training:
            self.train_images += len(self.learn.yb[0])

    def after_train(self):
        self.train_seconds += time.perf_counter() - self.train_start

    def after_epoch(self):
        self.epoch_seconds.append(time.perf_counter() - self.epoch_start)


def prefetch(arch: str) -> None:
    """Fill both caches on a machine with internet: the data set, then the pretrained weights."""
    # --- your work ---
    # TODO: download the data set as in main() (images = ...), then build the torchvision network
    # TODO: getattr(models, arch) once with weights="DEFAULT" so that its pretrained weights are downloaded.
    raise NotImplementedError("TODO: in prefetch(), call untar_data(URLs.PETS) and create the arch with weights='DEFAULT'")
    # --- end of your work ---
    print(f"data set cache: {images}")
    print(f"weights cache: {torch.hub.get_dir()}/checkpoints")
    print("Caches are filled; now submit the training job.")


# --- your work ---
def is_cat(filename: str) -> bool:
    # TODO: in the Oxford-IIIT Pet file names, cat breeds start with an upper-case letter.
    raise NotImplementedError("TODO: is_cat() must return True when the file name starts with an upper-case letter")
# --- end of your work ---


def main() -> None:
    args = parse_args()
    if args.prefetch:
        prefetch(args.arch)
        return
    arch = getattr(models, args.arch)

    print("Downloading dataset...")
    # --- your work ---
    # TODO: path = the "images" folder inside what untar_data(URLs.PETS) returns.
    raise NotImplementedError("TODO: set `path` to untar_data(URLs.PETS) / 'images'")
    # --- end of your work ---
    print("Finished downloading dataset")

    # --- your work ---
    # TODO: dls = ImageDataLoaders.from_name_func(...) over get_image_files(path): keep 20 % for validation
    # TODO: (seed 42), label with is_cat, resize every image to args.size, batches of args.batch_size,
    # TODO: and args.workers loader processes.
    raise NotImplementedError("TODO: build `dls` with ImageDataLoaders.from_name_func (valid_pct=0.2, seed=42, is_cat)")
    # --- end of your work ---
    device = dls.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}")

    print(f"On the login node, this will download {args.arch}")
    # --- your work ---
    # TODO: learn = vision_learner(...) on dls and arch, reporting accuracy and error_rate, with path="."
    # TODO: so that models/ is written to the current folder.
    raise NotImplementedError("TODO: create `learn` with vision_learner(dls, arch, metrics=[accuracy, error_rate], path='.')")
    # --- end of your work ---
    if device.type == "cuda" and not args.no_fp16:
        learn = learn.to_fp16()  # mixed precision: faster on tensor cores, same accuracy here
    throughput = Throughput()
    # trace_model=False: TensorBoard cannot trace a model that trains in mixed precision
    cbs = [SaveModelCallback(), TensorBoardCallback("runs", trace_model=False), throughput]

    # --- your work ---
    # TODO: unfreeze the whole network, then train args.epochs epochs with fit_one_cycle and the callbacks cbs.
    raise NotImplementedError("TODO: call learn.unfreeze() and learn.fit_one_cycle(args.epochs, cbs=cbs)")
    # --- end of your work ---

    valid_loss, acc, err = learn.validate()  # the best epoch's model, which SaveModelCallback reloaded
    seconds_per_epoch = sum(throughput.epoch_seconds) / len(throughput.epoch_seconds)
    images_per_second = throughput.train_images / throughput.train_seconds
    print(f"RESULT accuracy={acc:.4f} error_rate={err:.4f} valid_loss={valid_loss:.4f} epochs={args.epochs} "
          f"seconds_per_epoch={seconds_per_epoch:.2f} images_per_second={images_per_second:.1f} device={device.type}")


if __name__ == "__main__":
    sys.exit(main())
