"""FreeU (Si et al. 2023, "FreeU: Free Lunch in Diffusion U-Net", arXiv 2309.11497).

At the decoder's two deepest levels, FreeU amplifies half the backbone channels by ``b`` and damps
the lowest frequencies of the skip features by ``s`` (a Fourier filter), before the two are
concatenated. As in ComfyUI, the level is told by the backbone's channel count: ``4·model_channels``
gets ``(b1, s1)``, ``2·model_channels`` gets ``(b2, s2)``. Version 2 (the official repository's
``FreeU_V2``) scales the amplified half by ``1 + (b - 1)·m`` instead, with ``m`` the per-image
channel mean min-max normalised over the map, so the boost follows where the backbone is active.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

#: Half-width (in frequency bins) of the low-frequency box the skip filter scales.
FILTER_THRESHOLD = 1


def fourier_filter(x: Tensor, threshold: int, scale: float) -> Tensor:
    """``x`` [B, C, H, W] with its centred ``2·threshold`` square of lowest 2-D frequencies
    multiplied by ``scale`` (computed in float32, returned in ``x``'s dtype)."""
    freq = torch.fft.fftshift(torch.fft.fftn(x.float(), dim=(-2, -1)), dim=(-2, -1))
    height, width = freq.shape[-2:]
    mask = torch.ones(freq.shape[-2:], device=x.device)
    row, col = height // 2, width // 2
    mask[row - threshold:row + threshold, col - threshold:col + threshold] = scale
    freq = torch.fft.ifftshift(freq * mask, dim=(-2, -1))
    return torch.fft.ifftn(freq, dim=(-2, -1)).real.to(x.dtype)


def _structure_weight(h: Tensor, b: float) -> Tensor:
    """FreeU v2's backbone factor [B, 1, H, W]: ``1 + (b - 1)·normalised channel mean``."""
    mean = h.mean(1, keepdim=True)
    flat = mean.flatten(1)
    low = flat.min(dim=1).values[:, None, None, None]
    high = flat.max(dim=1).values[:, None, None, None]
    return (b - 1) * (mean - low) / (high - low) + 1


def freeu_output_patch(model_channels: int, b1: float, b2: float, s1: float, s2: float,
                       version: int = 1) -> Callable:
    """An ``output_block_patch``: ``(h, skip, options) -> (h, skip)`` with FreeU applied where
    ``h`` has ``4·model_channels`` or ``2·model_channels`` channels."""
    scales = {model_channels * 4: (b1, s1), model_channels * 2: (b2, s2)}

    def patch(h: Tensor, skip: Tensor, transformer_options: dict) -> tuple[Tensor, Tensor]:
        found = scales.get(int(h.shape[1]))
        if found is None:
            return h, skip
        b, s = found
        half = h.shape[1] // 2
        factor = b if version == 1 else _structure_weight(h, b)
        h = torch.cat([h[:, :half] * factor, h[:, half:]], dim=1)
        return h, fourier_filter(skip, FILTER_THRESHOLD, s)

    return patch
