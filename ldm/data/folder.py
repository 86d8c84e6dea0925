"""A folder of images with a ``.txt`` caption beside each one — the usual layout for fine-tuning
sets (``cat.png`` + ``cat.txt``). Images without a caption file train with the empty caption,
which also teaches the unconditional prediction. Each image is cropped to a centred square and
resized to ``size`` x ``size`` (Lanczos) when it is read.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ldm.imaging.image_io import is_image_name, load_image
from ldm.imaging.operations import resample_image


class EmptyDatasetError(ValueError):
    """The folder holds no image."""


class ImageFolderDataset:
    def __init__(self, folder: str | os.PathLike, size: int = 64):
        self.folder = Path(folder)
        self.size = size
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such folder")
        self.paths = sorted((p for p in self.folder.rglob("*") if p.is_file() and is_image_name(p.name)),
                            key=lambda p: str(p).lower())
        if not self.paths:
            raise EmptyDatasetError(f"{self.folder}: no images found")

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> torch.Tensor:
        pixels, _mask = load_image(self.paths[index])  # [frames, H, W, 3]; the first frame counts
        square = resample_image(pixels[:1], self.size, self.size, "lanczos", crop="center")
        return square[0].permute(2, 0, 1).clamp(0.0, 1.0).contiguous()

    def caption(self, index: int) -> str:
        text_file = self.paths[index].with_suffix(".txt")
        if not text_file.is_file():
            return ""
        return " ".join(text_file.read_text(encoding="utf-8", errors="replace").split())
