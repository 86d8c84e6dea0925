"""``comfy.ldm.modules.diffusionmodules.model``: the KL autoencoder's layers, by ComfyUI's names.

``Encoder``, ``Decoder``, ``ResnetBlock``, ``AttnBlock``, ``Upsample`` and ``Downsample`` are Weft's
own (:mod:`ldm.networks.autoencoder`, same module tree and weight names), so ``isinstance`` holds for the
layers of every VAE Weft loads; their constructors take Weft's ``VaeConfig`` / channel counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.networks.autoencoder import AttnBlock, Decoder, Downsample, Encoder, ResnetBlock, Upsample

__all__ = ["AttnBlock", "Decoder", "Downsample", "Encoder", "Normalize", "ResnetBlock", "Upsample",
           "nonlinearity"]


def nonlinearity(x: torch.Tensor) -> torch.Tensor:
    """Swish (SiLU), the autoencoder's activation."""
    return F.silu(x)


def Normalize(in_channels: int, num_groups: int = 32) -> torch.nn.GroupNorm:
    """The autoencoder's norm: GroupNorm, eps 1e-6."""
    return torch.nn.GroupNorm(num_groups=num_groups, num_channels=in_channels, eps=1e-6, affine=True)
