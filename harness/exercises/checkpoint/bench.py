"""Bench part `checkpoint-overhead` (found through the registry): what saving a checkpoint every N steps costs
exercise 6's training, as a share of its time.

In this process, with the course's own code: the network of train.py (make_model), SGD with momentum, and the
save() and state_of() of solutions/train_ckpt.py (a temporary file, then os.replace). A step is timed on a batch of
random 64 x 64 pictures (the data loading the real training adds would make the share smaller), a save of the whole
state into a temporary folder on this machine's disk. Overhead of saving every N steps = save / (N x step).
"""
from __future__ import annotations

import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Check, Part, Skipped

from harness.exercises import ROOT

SOLUTIONS = ROOT / "solutions"
EVERY = (1, 10, 100, 1000)
TARGET_SHARE_AT_100 = 0.01  # saving every 100 steps should cost at most 1 % of the training time


def course_module(name: str):
    """solutions/<name>.py imported as a module (its folder first on the path, for its own imports)."""
    sys.path.insert(0, str(SOLUTIONS))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", SOLUTIONS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SOLUTIONS))


class Wrapped:  # state_of() reads model.module, as of the DDP wrapper
    def __init__(self, module) -> None:
        self.module = module


def run(batch: int = 32, steps: int = 20, saves: int = 10) -> Part:
    try:
        import torch
        ckpt, train = course_module("train_ckpt"), course_module("train")
    except ImportError as error:
        raise Skipped(f"cannot import {error.name} (install requirements.txt into .venv)") from None
    torch.set_num_threads(1)
    model = train.make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=train.LR, momentum=0.9)
    x, y = torch.rand(batch, 3, train.SIZE, train.SIZE), torch.randint(0, 2, (batch,))
    step_s = []
    for _ in range(steps + 2):
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step_s.append(time.perf_counter() - started)
    step = statistics.median(step_s[2:])  # the first steps allocate
    save_s = []
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp:
        path = Path(tmp) / "checkpoint.pt"
        for n in range(saves):
            started = time.perf_counter()
            ckpt.save(ckpt.state_of(Wrapped(model), optimizer, 0, n), str(path))
            save_s.append(time.perf_counter() - started)
        size = path.stat().st_size
    save = statistics.median(save_s)
    part = Part("checkpoint-overhead", f"solutions/train_ckpt.py's save() of train.py's network and SGD state "
                f"({size / 1e6:.2f} MB) against a training step of {batch} pictures on one CPU thread",
                headers=["save every N steps", "step (ms)", "save (ms)", "overhead (share of the time)"])
    for every in EVERY:
        part.rows.append([every, step * 1e3, save * 1e3, f"{save / (every * step):.2%}"])
    part.checks.append(Check("overhead of a save every 100 steps", save / (100 * step), TARGET_SHARE_AT_100,
                             higher_is_better=False))
    part.notes.append(f"Medians of {steps} steps and {saves} saves. On a GPU the step is far shorter and the save "
                      "(copied from GPU memory) longer: measure there before choosing N.")
    return part
