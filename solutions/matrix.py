"""Exercise 1a: multiply two small matrices with PyTorch, on the login node: python matrix.py
A few milliseconds of one CPU core, so the login node is the right place. Its GPU twin is matrix_gpu.py."""
import torch

# --- your work ---
first = torch.randn(3, 3)
print("The first matrix is", first)

second = torch.randn(3, 3)
print("The second matrix is", second)

product = torch.matmul(first, second)
print("The result is:\n", product)
# --- end of your work ---
