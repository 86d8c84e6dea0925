"""The vector-quantised autoencoder of latent diffusion (CompVis ``VQModelInterface``), names = keys.

Taming Transformers' VQGAN first stage as the LDM paper uses it (Rombach et al. 2022, sec. 3 and
appendix G): the encoder and decoder of :mod:`ldm.networks.autoencoder` with ``double_z`` off,
``quant_conv`` to ``embed_dim`` channels, and a codebook ``quantize.embedding.weight``
[n_embed, embed_dim]. The diffusion model works on the *pre-quantisation* latent
(``encoder -> quant_conv``); decoding snaps each latent pixel to its nearest codebook entry first,
then runs ``post_quant_conv -> decoder`` (LDM's ``decode(h, force_not_quantize=False)``).
"""

from __future__ import annotations

import torch
from torch import nn

from ldm.networks.autoencoder import Decoder, Encoder, VaeConfig, VaeConfigError
from ldm.networks.ops import META, Operations

#: Distance-matrix entries computed at once when matching latents to the codebook: the
#: [rows, n_embed] float32 matrix of a whole 1024x1024 f4 image against 8192 codes would be 2 GiB.
DISTANCE_CHUNK_ELEMENTS = 1 << 24


class VectorQuantizer(nn.Module):
    """Nearest-codebook-entry quantisation by L2 distance (taming's ``VectorQuantizer2`` at inference).

    No straight-through gradient, commitment loss or index remapping: those only matter in training.
    """

    def __init__(self, n_embed: int, embed_dim: int, ops: Operations):
        super().__init__()
        self.embedding = ops.Embedding(n_embed, embed_dim)

    def indices(self, latent: torch.Tensor) -> torch.Tensor:
        """Codebook indices [B, H, W] of the entries nearest to each pixel of ``latent`` [B, C, H, W]."""
        codebook, _ = self.embedding.stored_weights()
        codebook = codebook.to(latent.device, torch.float32)  # distances in float32: fp16 ties flip picks
        b, c, h, w = latent.shape
        flat = latent.permute(0, 2, 3, 1).reshape(-1, c).float()  # [B*H*W, C]
        code_norms = codebook.square().sum(dim=1)  # [n_embed]
        rows = max(1, DISTANCE_CHUNK_ELEMENTS // codebook.shape[0])
        picks = []
        for chunk in flat.split(rows):
            # |z - e|^2 = |z|^2 + |e|^2 - 2 z.e; |z|^2 is the same for every entry, so argmin drops it
            distances = torch.addmm(code_norms, chunk, codebook.t(), alpha=-2.0)
            picks.append(distances.argmin(dim=1))
        return torch.cat(picks).reshape(b, h, w)

    def lookup(self, indices: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Codebook entries [B, C, H, W] for ``indices`` [B, H, W]."""
        return self.embedding(indices, out_dtype=dtype).permute(0, 3, 1, 2)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """``latent`` [B, C, H, W] with every pixel replaced by its nearest codebook entry."""
        return self.lookup(self.indices(latent), latent.dtype).contiguous()


class VQAutoencoder(nn.Module):
    """CompVis ``VQModel`` keys (``encoder``, ``decoder``, ``quant_conv``, ``post_quant_conv``,
    ``quantize.embedding``) with ``VQModelInterface``'s encode/decode."""

    def __init__(self, config: VaeConfig, n_embed: int, ops: Operations = META):
        super().__init__()
        if config.double_z:
            raise VaeConfigError("a VQ autoencoder's encoder emits one latent (double_z off)")
        self.config = config
        self.n_embed = n_embed
        self.encoder = Encoder(config, ops)
        self.decoder = Decoder(config, ops)
        self.quant_conv = ops.Conv2d(config.z_channels, config.embed_dim, 1)
        self.quantize = VectorQuantizer(n_embed, config.embed_dim, ops)
        self.post_quant_conv = ops.Conv2d(config.embed_dim, config.z_channels, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-quantisation latent [B, embed_dim, H / r, W / r] of images in -1..1."""
        return self.quant_conv(self.encoder(x))

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """The latent the diffusion model works in: the pre-quantisation one."""
        return self.encode(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Images in (about) -1..1 of pre-quantisation latents, quantised first."""
        return self.decoder(self.post_quant_conv(self.quantize(h)))

