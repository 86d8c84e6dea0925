"""TAESD's decoder: a tiny convolutional decoder of SD latents, for live previews.

Architecture as published with the weights (Ollin Boer Bohan, "TAESD: Tiny AutoEncoder for Stable
Diffusion", github.com/madebyollin/taesd, 2023): a flat sequence whose indices are the weight
keys of ``taesd_decoder.*`` / ``taesdxl_decoder.*`` —

    0 soft clamp tanh(x/3)·3      1 conv3×3 C→64   2 ReLU
    3–5 Block ×3    6 upsample ×2 (nearest)   7 conv3×3 64→64 (no bias)
    8–10 Block ×3   11 upsample               12 conv (no bias)
    13–15 Block ×3  16 upsample               17 conv (no bias)
    18 Block        19 conv3×3 64→3

where a Block is ``ReLU(conv(ReLU(conv(ReLU(conv(x))))) + x)`` (its convs at ``N.conv.0``,
``N.conv.2``, ``N.conv.4``). Input: latents in the diffusion model's space (raw VAE latents ×
the latent format's scale factor); output: RGB in about 0…1, 8× the latent size.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ldm.loading.checkpoint import load_state_dict

TAESD_WIDTH = 64
UPSAMPLINGS = 3


def _conv(n_in: int, n_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, kernel_size=3, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """Squashes latents smoothly into (-3, 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3.0) * 3.0


class Block(nn.Module):
    """Three 3×3 convolutions with ReLUs between, a residual connection, ReLU after the sum."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(width, width), nn.ReLU(), _conv(width, width), nn.ReLU(),
                                  _conv(width, width))
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + x)


def taesd_decoder(latent_channels: int = 4) -> nn.Sequential:
    """An untrained TAESD decoder (module indices = weight keys)."""
    layers: list[nn.Module] = [SoftClamp(), _conv(latent_channels, TAESD_WIDTH), nn.ReLU()]
    for _ in range(UPSAMPLINGS):
        layers += [Block(TAESD_WIDTH) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), _conv(TAESD_WIDTH, TAESD_WIDTH, bias=False)]
    layers += [Block(TAESD_WIDTH), _conv(TAESD_WIDTH, 3)]
    return nn.Sequential(*layers)


def load_taesd_decoder(path: str | os.PathLike, latent_channels: int = 4) -> nn.Sequential:
    """A TAESD decoder with the weights of ``path`` (``.safetensors`` or ``.pth``, loaded safely),
    in float32 on the CPU. Missing or unexpected keys are an error naming them."""
    state_dict, _ = load_state_dict(path)
    decoder = taesd_decoder(latent_channels)
    decoder.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True)
    return decoder.eval().requires_grad_(False)


def decode_preview(decoder: nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """Images ``[B, 8h, 8w, 3]`` in 0…1 from model-space latents ``[B, C, h, w]``."""
    parameter = next(decoder.parameters())
    with torch.no_grad():
        rgb = decoder(latents.to(device=parameter.device, dtype=parameter.dtype))
    return rgb.float().clamp(0.0, 1.0).permute(0, 2, 3, 1)
