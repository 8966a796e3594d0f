"""Exercise 4's stand-in pictures (Mini-Pets, a number divisible by the world sizes the tests use) and what every
format must read back as: the original files' bytes, decoded as PIL or torchvision decode them."""
from __future__ import annotations

import io
from pathlib import Path

from harness import minipets

PER_BREED = 6  # 37 breeds x 6 = 222 pictures: divisible by 1, 2 and 3 tasks, a few seconds per pass on a laptop


def write_pictures(folder: Path, per_breed: int = PER_BREED) -> list[Path]:
    """Mini-Pets JPEGs, named like Oxford-IIIT Pets (an upper-case breed is a cat)."""
    return minipets.write_images(folder, per_breed=per_breed)


def originals(images: Path) -> list[tuple[str, bytes, int]]:
    """(file name, bytes, label) of every *.jpg in `images`, sorted by name: the order every format must keep."""
    return [(p.name, p.read_bytes(), int(p.name[0].isupper())) for p in sorted(images.glob("*.jpg"))]


def decoded(jpeg: bytes):
    """The picture as a uint8 tensor (3, height, width), as PIL decodes it."""
    import numpy as np
    import torch
    from PIL import Image

    return torch.from_numpy(np.array(Image.open(io.BytesIO(jpeg)).convert("RGB"))).permute(2, 0, 1)


def same_picture(image, jpeg: bytes) -> bool:
    """`image` is the picture `jpeg`, decoded by PIL or by torchvision (they may differ in the last bit; a Dataset
    may use either)."""
    import torch

    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8:
        return False
    reference = decoded(jpeg)
    if image.shape == reference.shape and torch.equal(image, reference):
        return True
    try:
        import warnings

        from torchvision.io import ImageReadMode, decode_image
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision 0.29 deprecates its decoders in favour of torchcodec
            reference = decode_image(torch.frombuffer(bytearray(jpeg), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except ImportError:
        return False
    return image.shape == reference.shape and torch.equal(image, reference)
