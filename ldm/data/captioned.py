"""The protocol every training dataset meets, and batching over it."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class CaptionedImages(Protocol):
    """Images with captions, addressed by index; the same index always gives the same pair."""

    size: int  # images are size x size pixels

    def __len__(self) -> int: ...

    def image(self, index: int) -> torch.Tensor:
        """``[3, size, size]`` float32 in 0..1."""
        ...

    def caption(self, index: int) -> str: ...


def image_batch(dataset: CaptionedImages, indices: Sequence[int]) -> torch.Tensor:
    """``[B, 3, size, size]`` float32 in -1..1 (the autoencoder's input range)."""
    return torch.stack([dataset.image(int(i)) for i in indices]) * 2.0 - 1.0
