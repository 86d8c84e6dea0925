"""Preview images shown while a model trains: a grid of image tensors as one PIL image."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def image_grid(images: torch.Tensor, columns: int, scale: int = 2) -> Image.Image:
    """``[N, 3, H, W]`` in 0..1 -> a PIL image of ``columns`` per row, each pixel ``scale`` x ``scale``."""
    images = images.detach().float().clamp(0.0, 1.0)
    count, _, height, width = images.shape
    rows = -(-count // columns)
    canvas = torch.ones(3, rows * height, columns * width)
    for index in range(count):
        row, column = divmod(index, columns)
        canvas[:, row * height:(row + 1) * height, column * width:(column + 1) * width] = images[index]
    pixels = (canvas.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    grid = Image.fromarray(pixels)
    return grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST) if scale != 1 else grid
