"""Exercise 1: multiply two small matrices with PyTorch on the login node.

Run it with `python matrix.py`. It needs only a CPU, so it is fine on a login node; the batch
version of this exercise (`sbatch jureca-matrix.sbatch`) runs its GPU twin, matrix_gpu.py.
"""
import torch

# --- your work ---
first = torch.randn(3, 3)
print("The first matrix is", first)

second = torch.randn(3, 3)
print("The second matrix is", second)

product = torch.matmul(first, second)
print("The result is:\n", product)
# --- end of your work ---
