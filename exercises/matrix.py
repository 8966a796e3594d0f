"""Exercise 1a: multiply two small matrices with PyTorch, on the login node: python matrix.py
A few milliseconds of one CPU core, so the login node is the right place. Its GPU twin is matrix_gpu.py."""
import torch

# --- your work ---
# TODO: two random 3x3 matrices, each printed, then their matrix product, printed ("The result is:").
raise NotImplementedError("TODO: create two random 3x3 matrices, print them and print their torch.matmul product")
# --- end of your work ---
