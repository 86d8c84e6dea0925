"""SDXL's label vector ``y``: pooled text embedding + sinusoidal embeddings of sizes and crops.

Podell et al., "SDXL" (2023), sec. 2.2: the base model is conditioned on the original size
``(height, width)``, the crop corner ``(top, left)`` and the target size, each scalar embedded with
the 256-wide timestep embedding and concatenated after the pooled CLIP-bigG output
(1280 + 6*256 = 2816). The refiner replaces the target size by an aesthetic score
(1280 + 5*256 = 2560). Models trained with another embedding width (small SDXL-layout models)
carry it in ``UNetConfig.size_embed_dim``, read off their checkpoint by ``ldm.loading.detect``.
"""

from __future__ import annotations

import torch

from ldm.networks.unet import SIZE_EMBED_DIM, timestep_embedding


def size_embedding(values: list[float], batch: int, dim: int = SIZE_EMBED_DIM) -> torch.Tensor:
    """[batch, len(values) * dim]: each value embedded like a timestep, then concatenated."""
    embedded = timestep_embedding(torch.tensor(values, dtype=torch.float32), dim)  # [n, dim]
    return embedded.reshape(1, -1).expand(batch, -1)


def sdxl_label(pooled: torch.Tensor, *, width: int, height: int, crop_w: int = 0, crop_h: int = 0,
               target_width: int | None = None, target_height: int | None = None,
               size_embed_dim: int = SIZE_EMBED_DIM) -> torch.Tensor:
    """SDXL base ``y`` [B, pooled_dim + 6 * size_embed_dim] (order: height, width, crop_h, crop_w,
    target h, w)."""
    target_width = width if target_width is None else target_width
    target_height = height if target_height is None else target_height
    sizes = size_embedding([height, width, crop_h, crop_w, target_height, target_width], pooled.shape[0],
                           size_embed_dim)
    return torch.cat([pooled.float(), sizes.to(pooled.device)], dim=1)


def sdxl_refiner_label(pooled: torch.Tensor, *, width: int, height: int, crop_w: int = 0, crop_h: int = 0,
                       aesthetic_score: float = 6.0, size_embed_dim: int = SIZE_EMBED_DIM) -> torch.Tensor:
    """SDXL refiner ``y`` [B, pooled_dim + 5 * size_embed_dim] (order: height, width, crop_h, crop_w,
    score)."""
    sizes = size_embedding([height, width, crop_h, crop_w, aesthetic_score], pooled.shape[0], size_embed_dim)
    return torch.cat([pooled.float(), sizes.to(pooled.device)], dim=1)
