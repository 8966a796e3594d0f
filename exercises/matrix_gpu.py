"""Exercise 1b: multiply large matrices on a GPU of a compute node, check the answer, measure the speed.

The script uses CUDA when a GPU is visible and the CPU otherwise, so the same file runs on a laptop,
a login node and a compute node. Options:

  --size N     side of the square matrices (default 8192 on a GPU, 1024 on a CPU)
  --repeats R  timed multiplications (default 10)
  --no-tf32    keep full float32 precision; by default the GPU may use TensorFloat-32 (TF32),
               the fast mixed-precision mode of A100 tensor cores

The device result is checked against a float64 reference computed on the CPU for a sample of rows
(a full float64 product of two 8192x8192 matrices would take minutes on one CPU core).
It prints `device: <name>`, the largest relative error, whether the check passed and `TFLOP/s: <x>`;
the exit code is 1 when the check fails.
"""
import argparse
import sys
import time

import torch

CHECKED_ROWS = 64  # rows of the product compared with the float64 reference


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad options end in one line that says what to fix, not the full usage text."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args() -> argparse.Namespace:
    parser = OneLineErrorParser(description="Multiply large matrices on a GPU (or CPU) and time it.")
    parser.add_argument("--size", type=positive_int, default=None,
                        help="side of the square matrices (default: 8192 on a GPU, 1024 on a CPU)")
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed multiplications (default: 10)")
    parser.add_argument("--no-tf32", action="store_true", help="use full float32 precision instead of TF32")
    return parser.parse_args()


def synchronize(device: torch.device) -> None:
    """GPU work runs asynchronously: wait for it before reading the clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    args = parse_args()

    # --- your work ---
    # TODO: choose torch.device("cuda") when torch.cuda.is_available(), otherwise torch.device("cpu").
    raise NotImplementedError("TODO: set `device` to CUDA when a GPU is available, else to the CPU")
    # --- end of your work ---

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    size = args.size or (8192 if device.type == "cuda" else 1024)
    tf32 = device.type == "cuda" and not args.no_tf32
    # "high" lets float32 matrix products use TF32 tensor cores; "highest" keeps full float32.
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    tolerance = 1e-2 if tf32 else 1e-4
    print(f"device: {name}")
    print(f"size: {size}x{size}, precision: {'tf32' if tf32 else 'float32'}, repeats: {args.repeats}")

    generator = torch.Generator().manual_seed(0)
    first = torch.randn(size, size, generator=generator)
    second = torch.randn(size, size, generator=generator)

    # --- your work ---
    # TODO: copy `first` and `second` to `device` (as first_on_device, second_on_device)
    # TODO: and multiply them there with torch.matmul (as product).
    raise NotImplementedError("TODO: move both matrices to `device` and multiply them there into `product`")
    # --- end of your work ---

    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.repeats):
        torch.matmul(first_on_device, second_on_device, out=product)
    synchronize(device)
    seconds = time.perf_counter() - start
    tflops = 2 * size**3 * args.repeats / seconds / 1e12

    rows = torch.randperm(size, generator=generator)[:CHECKED_ROWS]
    reference = first[rows].double() @ second.double()
    error = (product[rows].cpu().double() - reference).abs().max() / reference.abs().max()
    passed = bool(error <= tolerance)

    print(f"max relative error: {error.item():.3e} (tolerance {tolerance:.0e}, {len(rows)} rows checked)")
    print(f"check: {'passed' if passed else 'FAILED'}")
    print(f"time: {seconds:.3f} s for {args.repeats} multiplications")
    print(f"TFLOP/s: {tflops:.3f}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
