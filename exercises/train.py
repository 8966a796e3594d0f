"""Exercise 5a: train a small network that tells cats from dogs on one GPU (or the CPU), reading the pets.h5 of
exercise 4 with your HDF5Dataset. A short try: DATA=packed/pets.h5 EPOCHS=1 python train.py"""
import os, time

import torch
from torch import nn
from datasets import HDF5Dataset

DATA, EPOCHS = os.environ.get("DATA", "packed/pets.h5"), int(os.environ.get("EPOCHS", 5))
BATCH, WORKERS, LR, SIZE = int(os.environ.get("BATCH", 64)), int(os.environ.get("WORKERS", 4)), 0.05, 64

def make_model():  # three convolutions and a linear layer, no BatchNorm; the same start in every run
    torch.manual_seed(0)
    block = lambda n_in, n_out: [nn.Conv2d(n_in, n_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 2))

def train_step(model, optimizer, x, y, device, bf16=False):  # one step on the batch x, y; gives back its loss
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):  # bf16=True: exercise 7's mixed precision
        loss = nn.functional.cross_entropy(model(x.to(device).float() / 255), y.to(device))  # pictures: 0-255 to 0-1
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss

def main():
    # --- your work ---
    # TODO: device, where the network and each batch of pictures go: the GPU where there is one, else the CPU.
    raise NotImplementedError("TODO: pick the device for training (as in exercise 1b)")
    # --- end of your work ---
    data = HDF5Dataset(DATA, size=SIZE)
    loader = torch.utils.data.DataLoader(data, BATCH, shuffle=True, num_workers=WORKERS, drop_last=True)
    model = make_model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    log, start = open("train_log.csv", "w", buffering=1), time.time()  # per step: epoch, pictures, seconds, loss
    for epoch in range(EPOCHS):
        for x, y in loader:
            loss = train_step(model, optimizer, x, y, device)
            print(epoch, len(x), round(time.time() - start, 3), loss.item(), sep=",", file=log)
        print(f"epoch {epoch}: loss {loss.item():.4f} after {time.time() - start:.1f} s", flush=True)
    torch.save(model.state_dict(), "model.pt")

if __name__ == "__main__":
    main()
