"""Exercise 1b: multiply two large matrices on a GPU (on the CPU where there is none), time it, check the answer.
On a compute node: sbatch ../slurm/jureca-matrix.sbatch. Other sizes: SIZE=4096 python matrix_gpu.py"""
import os
import time

import torch

# --- your work ---
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
# --- end of your work ---
print("device:", torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
size = int(os.environ.get("SIZE", 8192 if device.type == "cuda" else 1024))
first, second = torch.randn(size, size), torch.randn(size, size)  # made on the CPU

# --- your work ---
first_there, second_there = first.to(device), second.to(device)
product = first_there @ second_there
# --- end of your work ---

wait = torch.cuda.synchronize if device.type == "cuda" else lambda: None  # a GPU works asynchronously
wait()
start = time.perf_counter()
for _ in range(10):
    first_there @ second_there
wait()
print(f"TFLOP/s: {2 * size**3 * 10 / (time.perf_counter() - start) / 1e12:.3g}")  # 3 digits: 0.00612, 18.9

# float32 keeps 7 digits; a sum of SIZE products loses about sqrt(SIZE) x 6e-8 of them (5e-6 for 8192): a 1e-4
# bound leaves room for that, and a wrong product (another order, a missing row) is off by about 1.
reference = first[:64].double() @ second.double()  # the first 64 rows again, in float64 on the CPU
error = ((product[:64].cpu().double() - reference).abs().max() / reference.abs().max()).item()
print(f"check: {'passed' if error < 1e-4 else 'FAILED'} (largest relative error {error:.1e})")
