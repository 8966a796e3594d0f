"""Mini-Pets: an offline stand-in for the Oxford-IIIT Pet data set and the resnet34 weights.

The cat classifier calls `untar_data(URLs.PETS)` and `vision_learner(dls, resnet34)`, which download
800 MB of photos and 83 MB of weights. Tests cannot download, so this module writes look-alikes into
temporary caches, where the unchanged course code finds them:

* images in `FASTAI_HOME/data/oxford-iiit-pet/images`, named like the real ones (`Abyssinian_1.jpg`
  for the 12 cat breeds, `beagle_1.jpg` for the 25 dog breeds). fastai 2.8 (via fastdownload)
  returns that folder without any network as soon as it exists: `FastDownload.get` checks
  `data_path/'oxford-iiit-pet'` before downloading, and `fastai_cfg()` creates `config.ini`
  with the default `data`/`archive` keys when it is missing.
* a randomly initialised resnet34 `state_dict` in `TORCH_HOME/hub/checkpoints/resnet34-b627a593.pth`:
  torch.hub loads a checkpoint that is already there and only checks hashes of fresh downloads.

The pictures carry a signal a network learns from scratch in a short CPU run: cats are warm-coloured
round bodies with pointed ears, dogs are cool-coloured boxy bodies with floppy ears; the background
colour, position, size, saturation and pixel noise vary so that no single pixel gives the answer.

Command line (seed the caches for a batch job):
    python -m harness.minipets --fastai-home DIR --torch-home DIR [--per-breed N]
"""
from __future__ import annotations

import argparse
import colorsys
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CAT_BREEDS = (
    "Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
    "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx",
)
DOG_BREEDS = (
    "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "boxer", "chihuahua",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
    "japanese_chin", "keeshond", "leonberger", "miniature_pinscher", "newfoundland", "pomeranian", "pug",
    "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "staffordshire_bull_terrier",
    "wheaten_terrier", "yorkshire_terrier",
)
BREEDS = CAT_BREEDS + DOG_BREEDS
IMAGE_SIZE = (80, 64)  # width, height: not square, so the course's Resize really crops
DEFAULT_PER_BREED = 12
DATASET_FOLDER = "oxford-iiit-pet"  # the folder name untar_data(URLs.PETS) extracts to


def is_cat_breed(breed: str) -> bool:
    """The data set's own convention, which the course's label function relies on."""
    return breed[0].isupper()


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue % 1.0, saturation, value))  # type: ignore[return-value]


def draw_pet(breed: str, number: int, seed: int = 0) -> Image.Image:
    """One picture, always the same for the same (breed, number, seed)."""
    rng = np.random.default_rng([seed, zlib.crc32(breed.encode()), number])
    width, height = IMAGE_SIZE
    background = _rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.4), rng.uniform(0.35, 0.85))
    image = Image.new("RGB", IMAGE_SIZE, background)
    draw = ImageDraw.Draw(image)

    cat = is_cat_breed(breed)
    hue = rng.uniform(-0.05, 0.12) if cat else rng.uniform(0.45, 0.68)  # warm cats, cool dogs
    body = _rgb(hue, rng.uniform(0.6, 0.95), rng.uniform(0.6, 1.0))
    cx = width / 2 + rng.uniform(-6, 6)
    cy = height / 2 + rng.uniform(-4, 6)
    r = 19 * rng.uniform(0.85, 1.15)
    if cat:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=body)
        for side in (-1, 1):  # pointed ears above the head
            draw.polygon([(cx + side * 0.35 * r, cy - 0.75 * r), (cx + side * 0.95 * r, cy - 0.45 * r),
                          (cx + side * 0.8 * r, cy - 1.5 * r)], fill=body)
    else:
        draw.rounded_rectangle([cx - r, cy - 0.85 * r, cx + r, cy + r], radius=int(r / 4), fill=body)
        for side in (-1, 1):  # floppy ears hanging at the sides
            left, right = sorted([cx + side * r, cx + side * 1.45 * r])
            draw.rectangle([left, cy - 0.8 * r, right, cy + 0.5 * r], fill=body)
    eye = _rgb(0, 0, rng.uniform(0.0, 0.25))
    for side in (-1, 1):
        ex, ey = cx + side * 0.4 * r, cy - 0.2 * r
        draw.ellipse([ex - 2, ey - 2, ex + 2, ey + 2], fill=eye)

    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 15, size=(height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_images(folder: Path | str, per_breed: int = DEFAULT_PER_BREED, seed: int = 0) -> list[Path]:
    """Write `per_breed` JPEGs for each of the 37 breeds into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for breed in BREEDS:
        for number in range(1, per_breed + 1):
            path = folder / f"{breed}_{number}.jpg"
            draw_pet(breed, number, seed).save(path, quality=90)
            paths.append(path)
    return paths


def seed_fastai_home(fastai_home: Path | str, per_breed: int = DEFAULT_PER_BREED, seed: int = 0,
                     images_from: Path | str | None = None) -> Path:
    """Make `untar_data(URLs.PETS)` find Mini-Pets under `fastai_home`; returns the images folder.

    `images_from` copies an already generated images folder instead of drawing the pictures again.
    """
    images = Path(fastai_home) / "data" / DATASET_FOLDER / "images"
    if images_from is not None:
        shutil.copytree(images_from, images, dirs_exist_ok=True)
    else:
        write_images(images, per_breed, seed)
    return images


def checkpoint_name(arch: str = "resnet34") -> str:
    """The file name torchvision downloads the default weights of `arch` to."""
    import torchvision

    return torchvision.models.get_model_weights(arch).DEFAULT.url.rsplit("/", 1)[-1]


def write_checkpoint(path: Path | str, arch: str = "resnet34", seed: int = 0) -> Path:
    """Save a randomly initialised torchvision `arch` state_dict at `path`."""
    import torch
    import torchvision

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, weights=None)
    tmp = path.with_name(path.name + ".part")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return path


def seed_torch_home(torch_home: Path | str, arch: str = "resnet34", checkpoint_from: Path | str | None = None) -> Path:
    """Put stand-in weights where torchvision looks for them under `torch_home`; returns the file.

    `checkpoint_from` links (or copies) an existing checkpoint instead of writing a new one.
    """
    target = Path(torch_home) / "hub" / "checkpoints" / checkpoint_name(arch)
    if checkpoint_from is None:
        return write_checkpoint(target, arch)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(checkpoint_from, target)
    except OSError:
        shutil.copyfile(checkpoint_from, target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Seed fastai and torch caches with the Mini-Pets stand-ins.")
    parser.add_argument("--fastai-home", type=Path, required=True, help="folder to use as FASTAI_HOME")
    parser.add_argument("--torch-home", type=Path, required=True, help="folder to use as TORCH_HOME")
    parser.add_argument("--per-breed", type=int, default=DEFAULT_PER_BREED, help="images per breed (default: %(default)s)")
    parser.add_argument("--arch", default="resnet34", help="torchvision architecture of the weights (default: resnet34)")
    args = parser.parse_args(argv)
    if args.per_breed < 1:
        parser.error("--per-breed must be 1 or more")
    for home in (args.fastai_home, args.torch_home):
        if home.resolve() in {Path("~/.fastai").expanduser().resolve(), Path("~/.cache/torch").expanduser().resolve()}:
            parser.error(f"{home} is a real cache; give a scratch folder instead")
    images = seed_fastai_home(args.fastai_home, args.per_breed)
    weights = seed_torch_home(args.torch_home, args.arch)
    print(f"images: {images} ({len(BREEDS) * args.per_breed} files)")
    print(f"weights: {weights}")
    print(f"use: export FASTAI_HOME={args.fastai_home.resolve()} TORCH_HOME={args.torch_home.resolve()}")


if __name__ == "__main__":
    main()
