"""Part data-pipeline: images/s of the cat classifier's fastai DataLoaders vs what this CPU can decode and resize.

The stand-in pictures (harness.minipets) are written to a temporary folder. One epoch of the train DataLoader is
iterated with 0 workers and with one worker per core; the ceiling is plain PIL decode + resize of the same files
with one process per core. A GPU waits for the data loader when the loader stays far below the ceiling.

The stand-in pictures are small (80x64) so that the tests train fast; real Pets photos are about 500x375. The same
pictures are measured a second time, scaled up to that size, because decoding a real photo costs far more than
decoding a thumbnail, and fastai's fixed per-picture work weighs less there.
"""
from __future__ import annotations

import ast
import multiprocessing
import os
import tempfile
import time
import types
from pathlib import Path

from bench.report import Check, Part, Skipped
from harness.exercises import ROOT

CATS = ROOT / "solutions" / "cats.py"
TARGET_SHARE = 0.8
PETS_SIZE = (500, 375)  # width, height of a typical Oxford-IIIT Pet photo


def load_cats():
    """The label function of the course's own solutions/cats.py. The script trains when it runs, so only its
    function definitions are taken from it (parsed, not run)."""
    if not CATS.exists():
        raise Skipped(f"{CATS.relative_to(ROOT)} is missing")
    tree = ast.parse(CATS.read_text())
    functions = ast.Module(body=[node for node in tree.body if isinstance(node, ast.FunctionDef)], type_ignores=[])
    module = types.ModuleType("course_cats")
    exec(compile(functions, str(CATS), "exec"), module.__dict__)  # noqa: S102 (the course's own file)
    return module


def write_standin(folder: Path, count: int, scale_to: tuple[int, int] | None = None) -> list[Path]:
    """`count` Mini-Pets pictures, cats and dogs alternating so that even a handful holds both classes.

    `scale_to` (width, height) writes them scaled up to that size, e.g. the size of a real Pets photo."""
    from PIL import Image

    from harness import minipets

    folder.mkdir(parents=True, exist_ok=True)
    order = [b for pair in zip(minipets.CAT_BREEDS, minipets.DOG_BREEDS) for b in pair]
    order += [b for b in minipets.BREEDS if b not in order]
    paths = []
    for i in range(count):
        breed, number = order[i % len(order)], i // len(order) + 1
        path = folder / f"{breed}_{number}.jpg"
        picture = minipets.draw_pet(breed, number)
        if scale_to is not None:
            picture = picture.resize(scale_to, Image.BICUBIC)
        picture.save(path, quality=90)
        paths.append(path)
    return paths


def make_dataloaders(cats, path: Path, size: int, batch_size: int, workers: int):
    """The DataLoaders of solutions/cats.py: its own function if it has one, else the same call it makes."""
    own = getattr(cats, "make_dataloaders", None)
    if own is not None:
        return own(path, size=size, batch_size=batch_size, workers=workers), "cats.make_dataloaders"
    from fastai.data.transforms import get_image_files
    from fastai.vision.augment import Resize
    from fastai.vision.data import ImageDataLoaders

    dls = ImageDataLoaders.from_name_func(
        path, get_image_files(path), valid_pct=0.2, seed=42, label_func=cats.is_cat,
        item_tfms=Resize(size), bs=batch_size, num_workers=workers)
    return dls, "the call in cats.py (mirrored: the script trains when it runs)"


def loader_rate(dls) -> tuple[int, float]:
    """Images and seconds for one full epoch of the train DataLoader, worker start-up included."""
    count, start = 0, time.perf_counter()
    for xb, _ in dls.train:
        count += len(xb)
    return count, time.perf_counter() - start


def _decode_resize(args: tuple[str, int]) -> int:
    from PIL import Image

    path, size = args
    with Image.open(path) as image:
        image.convert("RGB").resize((size, size), Image.BILINEAR)
    return 1


def ceiling_rate(paths: list[Path], size: int, processes: int) -> tuple[int, float]:
    """PIL decode + resize of `paths`, one process per core; the pool is started before the clock."""
    jobs = [(str(p), size) for p in paths]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(abs, range(processes))  # processes are up before timing
        start = time.perf_counter()
        count = sum(pool.imap_unordered(_decode_resize, jobs, chunksize=max(1, len(jobs) // (processes * 8))))
        return count, time.perf_counter() - start


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def measure(cats, folder: Path, size: int, batch_size: int, workers: int, cores: int):
    """Images and seconds of the loaders (0 workers, `workers`) and of the ceiling, and where the loaders came from."""
    rates, ceilings = {}, []
    for n in sorted({0, workers}):
        dls, source = make_dataloaders(cats, folder, size, batch_size, n)
        train_files = [Path(p) for p in dls.train_ds.items]
        if not ceilings:
            ceilings.append(ceiling_rate(train_files, size, cores))
        count, seconds = loader_rate(dls)
        if count == 0:
            raise Skipped(f"the train DataLoader yields no full batch of {batch_size} from {folder}")
        rates[n] = (count, seconds)
    ceilings.append(ceiling_rate(train_files, size, cores))  # before and after: the better one counts
    return rates, max(ceilings, key=lambda c: c[0] / c[1]), source, len(train_files)


def run(images: int = 1480, size: int = 224, batch_size: int = 64, workers: int | None = None) -> Part:
    from harness.minipets import IMAGE_SIZE

    cores = os.cpu_count() or 1
    workers = cores if workers is None else workers
    part = Part("data-pipeline", f"fastai DataLoaders of solutions/cats.py on {images} stand-in images, "
                f"Resize({size}), batch {batch_size}",
                headers=["pictures", "loader", "images", "seconds", "images/s", "share of ceiling"])
    try:
        import fastai  # noqa: F401
        from harness import minipets  # noqa: F401
    except ImportError as error:
        raise Skipped(f"cannot import {error.name} (install requirements.txt into .venv)") from None
    cats = load_cats()
    if not hasattr(cats, "is_cat") and not hasattr(cats, "make_dataloaders"):
        raise Skipped("solutions/cats.py has neither is_cat nor make_dataloaders")
    sizes = [(f"stand-in {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}", None),
             (f"scaled to Pets {PETS_SIZE[0]}x{PETS_SIZE[1]}", PETS_SIZE)]
    for label, scale_to in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-pets-") as tmp:
            folder = Path(tmp) / "images"
            write_standin(folder, images, scale_to)
            rates, (ceiling_count, ceiling_seconds), source, files = measure(
                cats, folder, size, batch_size, workers, cores)
        ceiling = ceiling_count / ceiling_seconds
        for n, (count, seconds) in rates.items():
            part.rows.append([label, f"fastai, {n} workers", count, seconds, count / seconds,
                              f"{(count / seconds) / ceiling:.0%}"])
        part.rows.append([label, f"ceiling: PIL decode+resize, {cores} processes", ceiling_count, ceiling_seconds,
                          ceiling, "100%"])
        count, seconds = rates[workers]
        part.checks.append(Check(f"{label}: {workers} workers / ceiling", (count / seconds) / ceiling, TARGET_SHARE))
    part.notes.append(f"DataLoaders built by {source}; one epoch of the train split (drop_last), "
                      f"worker start-up included; ceiling over the same {files} train files, "
                      "measured before and after the loaders (the faster run is shown), "
                      f"torch threads in the main process: {torch_threads()}.")
    return part
