"""``comfy.taesd.taesd``: TAESD's building blocks with ComfyUI's constructors, over ``ldm.networks.taesd``.

``Clamp`` is Weft's soft clamp, ``Decoder(latent_channels)`` Weft's TAESD decoder (same weight
keys), ``conv`` a 3×3 padded convolution, ``Block(n_in, n_out)`` Weft's residual block with
TAESD's 1×1 ``skip`` convolution where the widths differ — what packs use to build decoders of
other widths (KJNodes' tiny-VAE loader). Weft has no TAESD encoder: ``Encoder`` and the
encoder-and-decoder wrapper ``TAESD`` raise :class:`_weft_absent.NotInWeftError`.
"""

from __future__ import annotations

import torch
from torch import nn

from _weft_absent import Feature, absent_class, absent_function
from ldm.networks import taesd as weft_taesd

TAESD_ENCODER = Feature("TAESD encoders (Weft uses TAESD decoders for previews only)", planned=False)
MIDBLOCK_NORM = Feature("TAESD blocks with a mid-block group norm")

Clamp = weft_taesd.SoftClamp
Decoder = weft_taesd.taesd_decoder


def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    """A 3×3 convolution with one pixel of padding (``stride``, ``bias`` … passed on)."""
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Block(weft_taesd.Block):
    """``ReLU(conv(ReLU(conv(ReLU(conv(x))))) + skip(x))``; ``skip`` is a 1×1 convolution without
    bias when ``n_in != n_out``, else the identity (no weights)."""

    def __init__(self, n_in: int, n_out: int, use_midblock_gn: bool = False) -> None:
        if use_midblock_gn:
            raise MIDBLOCK_NORM.error(f"{__name__}.Block(use_midblock_gn=True)")
        super().__init__(n_out)
        if n_in != n_out:
            self.conv[0] = conv(n_in, n_out)
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + self.skip(x))


Encoder = absent_function(TAESD_ENCODER, __name__, "Encoder")
TAESD = absent_class(TAESD_ENCODER, __name__, "TAESD", (nn.Module,))
