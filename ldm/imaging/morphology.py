"""Grey-level morphology with a flat square structuring element, on ``[B, C, H, W]`` tensors.

The operations of ComfyUI's Morphology node (which calls kornia): erosion and dilation are the
minimum and maximum over a ``size x size`` window, and the rest compose them (Gonzalez & Woods,
*Digital Image Processing*, ch. 9). Pixels outside the image never take part (kornia's
"geodesic" border, scipy.ndimage's ``mode="nearest"`` for flat elements), and an even window
reaches ``size // 2`` pixels back and ``size // 2 - 1`` forward, as kornia and scipy place it,
so the output keeps the input's size.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def _window_max(samples: torch.Tensor, size: int) -> torch.Tensor:
    """Maximum over a ``size x size`` window; separable (rows, then columns), so a large window
    costs two 1-D passes. Padding with -inf keeps out-of-image pixels out of every window."""
    before, after = size // 2, size - size // 2 - 1
    padded = F.pad(samples, (before, after, before, after), value=-torch.inf)
    rows = F.max_pool2d(padded, kernel_size=(1, size), stride=1)
    return F.max_pool2d(rows, kernel_size=(size, 1), stride=1)


def dilate(samples: torch.Tensor, size: int) -> torch.Tensor:
    return _window_max(samples, size)


def erode(samples: torch.Tensor, size: int) -> torch.Tensor:
    return -_window_max(-samples, size)


def open_(samples: torch.Tensor, size: int) -> torch.Tensor:
    """Erosion then dilation: removes bright details smaller than the window."""
    return dilate(erode(samples, size), size)


def close(samples: torch.Tensor, size: int) -> torch.Tensor:
    """Dilation then erosion: fills dark details smaller than the window."""
    return erode(dilate(samples, size), size)


def gradient(samples: torch.Tensor, size: int) -> torch.Tensor:
    return dilate(samples, size) - erode(samples, size)


def top_hat(samples: torch.Tensor, size: int) -> torch.Tensor:
    """The bright details an opening removes."""
    return samples - open_(samples, size)


def bottom_hat(samples: torch.Tensor, size: int) -> torch.Tensor:
    """The dark details a closing fills."""
    return close(samples, size) - samples


#: The operations by the names ComfyUI's Morphology node offers, in its order.
OPERATIONS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "erode": erode,
    "dilate": dilate,
    "open": open_,
    "close": close,
    "gradient": gradient,
    "bottom_hat": bottom_hat,
    "top_hat": top_hat,
}


def apply(samples: torch.Tensor, operation: str, size: int) -> torch.Tensor:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown morphology operation {operation!r}; expected one of {list(OPERATIONS)}")
    if size < 1:
        raise ValueError(f"the structuring element must be at least 1 pixel, got {size}")
    return OPERATIONS[operation](samples, size)
