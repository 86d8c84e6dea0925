"""``comfy.k_diffusion.utils``: the helpers of k-diffusion's utils module that packs use.

VideoHelperSuite reads ``FolderOfImages.IMG_EXTENSIONS`` to filter image files; the dataset
itself (every image under a folder, recursively, sorted by path, loaded as RGB) is provided too.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils import data

__all__ = ["FolderOfImages", "append_dims", "n_params"]


def append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
    """``x`` with singleton axes appended up to ``target_dims`` axes (for broadcasting sigmas)."""
    missing = target_dims - x.ndim
    if missing < 0:
        raise ValueError(f"input has {x.ndim} dims but target_dims is {target_dims}, which is less")
    return x[(...,) + (None,) * missing]


def n_params(module: nn.Module) -> int:
    """The number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


class FolderOfImages(data.Dataset):
    """Every image under ``root`` (recursively, sorted), as ``(transform(rgb image),)``."""

    IMG_EXTENSIONS = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}

    def __init__(self, root, transform=None) -> None:
        super().__init__()
        self.root = Path(root)
        self.transform = nn.Identity() if transform is None else transform
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in self.IMG_EXTENSIONS)

    def __repr__(self) -> str:
        return f'FolderOfImages(root="{self.root}", len: {len(self)})'

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple:
        with Image.open(self.paths[index]) as image:
            return (self.transform(image.convert("RGB")),)
