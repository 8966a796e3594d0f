"""Exercise 1: multiply two small matrices with PyTorch on the login node.

Run it with `python matrix.py`. It needs only a CPU, so it is fine on a login node; the batch
version of this exercise (`sbatch jureca-matrix.sbatch`) runs its GPU twin, matrix_gpu.py.
"""
import torch

# --- your work ---
# TODO: make two random 3x3 matrices with torch.randn and print each of them,
# TODO: multiply them with torch.matmul and print the result.
raise NotImplementedError("TODO: create two random 3x3 matrices, print them and print their torch.matmul product")
# --- end of your work ---
