"""Exercise 7: where does the time of a training step go? torch.profiler records a few steps of a small training
and writes a trace (open it in https://ui.perfetto.dev) and a table. The start reads the JPEG folder:
    PETS_IMAGES=~/.fastai/data/oxford-iiit-pet/images python profile_train.py                 (LOADER=jpeg)
then, with preload() written:  LOADER=preloaded python profile_train.py                  (PRECISION=bf16: autocast)"""
import os, random, time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.profiler import ProfilerActivity, profile, schedule

from train import make_model, train_step  # exercise 5's network and step (train.py, beside this file)

IMAGES = Path(os.environ.get("PETS_IMAGES", "~/.fastai/data/oxford-iiit-pet/images")).expanduser()
LOADER, PRECISION = os.environ.get("LOADER", "jpeg"), os.environ.get("PRECISION", "fp32")  # jpeg|preloaded, fp32|bf16
STEPS, BATCH, SIZE = int(os.environ.get("STEPS", 10)), int(os.environ.get("BATCH", 32)), 32

def prepared(path):  # a picture as the network sees it: decoded, scaled to 224 px as in exercise 2, smoothed, SIZE px
    image = Image.open(path).convert("RGB").resize((224, 224)).filter(ImageFilter.GaussianBlur(2))
    return torch.from_numpy(np.array(image.resize((SIZE, SIZE)))).permute(2, 0, 1)

class JpegFolder(torch.utils.data.Dataset):  # every step, every picture: open, decode, scale, smooth, scale again
    def __init__(self, paths):
        self.paths = paths
    def __len__(self):
        return len(self.paths)
    def __getitem__(self, i):
        return prepared(self.paths[i]), int(self.paths[i].name[0].isupper())  # 1: a cat (upper-case breed)

def preload(paths):  # the same pictures and labels as JpegFolder, prepared once, before the training
    # --- your work ---
    # TODO: prepare every picture once (prepared(path)) and keep them all in one uint8 tensor, with a tensor of
    # the labels beside it; give both back as a torch.utils.data.TensorDataset. What is left for the loader to do?
    raise NotImplementedError("TODO: preload(): prepare every picture once, give back a TensorDataset")
    # --- end of your work ---

def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    paths = sorted(IMAGES.glob("*.jpg"))
    paths = random.Random(0).sample(paths, min(len(paths), STEPS * BATCH))  # one epoch of STEPS steps
    data = JpegFolder(paths) if LOADER == "jpeg" else preload(paths)
    loader = torch.utils.data.DataLoader(data, BATCH, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))  # the same order every run
    model = make_model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    trace = f"traces/{LOADER}-{PRECISION}.json"
    os.makedirs("traces", exist_ok=True)
    plan = schedule(wait=1, warmup=1, active=min(STEPS - 2, 8), repeat=1)  # skip 1 step, warm up 1, record 8
    with profile(activities=activities, schedule=plan,
                 on_trace_ready=lambda prof: prof.export_chrome_trace(trace)) as prof:
        for step, (x, y) in enumerate(loader):
            start = time.time()
            loss = train_step(model, optimizer, x, y, device, bf16=PRECISION == "bf16")  # bf16: forward in autocast
            print(f"step {step}: loss {loss.item():.6f} ({time.time() - start:.3f} s without the loader)")
            prof.step()
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=12))
    print(f"trace: {trace} ({LOADER}, {PRECISION}, {device})")

if __name__ == "__main__":
    main()
