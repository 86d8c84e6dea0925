"""HyperTile (tfernd/HyperTile, as ComfyUI's node applies it): self-attention queries of the
largest feature maps are cut into tiles of about ``tile_size`` pixels, so each attends over
fewer tokens.

The ``attn1_patch`` rearranges only the queries ``n`` [B, H·W, C] into ``nh·nw`` tiles
[B·nh·nw, (H/nh)·(W/nw), C]; keys and values keep their layout, and the attention splits them
by the tiled batch into consecutive token runs (ComfyUI's behaviour, reproduced so workflows give
its results). The ``attn1_output_patch`` puts the tiles back in place.

Tile counts are divisors of the map's sides: ``random_divisor`` picks among the ``swap_size``
largest tile counts whose tiles are at least the tile size. ComfyUI draws from torch's global
generator; here each call draws from a generator seeded by the step's sigma and the map size,
so a prompt gives the same image every time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Pixels per latent pixel: HyperTile's tile size is given in image pixels.
LATENT_SCALE = 8
MIN_TILE = 32


def random_divisor(value: int, min_value: int, max_options: int, generator: torch.Generator) -> int:
    """A count of equal tiles along ``value`` latent pixels, each tile at least ``min_value`` wide
    (or the whole side): one of the ``max_options`` largest such counts, drawn as ComfyUI draws
    (an index below ``len - 1``, so the last option is never taken unless it is the only one)."""
    min_value = min(min_value, value)
    sizes = [size for size in range(min_value, value + 1) if value % size == 0]
    counts = [value // size for size in sizes[:max_options]]
    if len(counts) > 1:
        index = int(torch.randint(0, len(counts) - 1, (1,), generator=generator))
    else:
        index = 0
    return counts[index]


class HyperTilePatches:
    """The pair of attn1 patches; ``_pending`` carries the tiling from one to the other."""

    def __init__(self, tile_size: int, swap_size: int, max_depth: int, scale_depth: bool):
        self.latent_tile_size = max(MIN_TILE, tile_size) // LATENT_SCALE
        self.swap_size = swap_size
        self.max_depth = max_depth
        self.scale_depth = scale_depth
        self._pending: tuple[int, int, int, int] | None = None

    def _generator(self, tokens: int, options: dict) -> torch.Generator:
        sigmas = options.get("sigmas")
        sigma = float(sigmas[0]) if sigmas is not None else 0.0
        return torch.Generator().manual_seed(hash((round(sigma, 6), tokens)) & 0x7FFFFFFF)

    def split(self, n: Tensor, context: Tensor, value: Tensor, options: dict):
        """``attn1_patch``: tile the queries of maps at depth 0..max_depth."""
        shape = options["original_shape"]
        tokens = n.shape[-2]
        depths = [(shape[-2] / 2 ** i) * (shape[-1] / 2 ** i) for i in range(self.max_depth + 1)]
        if tokens not in depths:
            return n, context, value
        aspect = shape[-1] / shape[-2]
        # ComfyUI's naming, kept for the same tiling on non-square maps: "h" is sqrt(tokens·W/H)
        h, w = round(math.sqrt(tokens * aspect)), round(math.sqrt(tokens / aspect))
        factor = 2 ** depths.index(tokens) if self.scale_depth else 1
        generator = self._generator(tokens, options)
        nh = random_divisor(h, self.latent_tile_size * factor, self.swap_size, generator)
        nw = random_divisor(w, self.latent_tile_size * factor, self.swap_size, generator)
        if nh * nw > 1:
            batch, _, channels = n.shape
            th, tw = h // nh, w // nw
            # [B, (nh th nw tw), C] -> [B·nh·nw, th·tw, C]
            n = (n.reshape(batch, nh, th, nw, tw, channels).permute(0, 1, 3, 2, 4, 5)
                 .reshape(batch * nh * nw, th * tw, channels))
            self._pending = (nh, nw, h, w)
        return n, context, value

    def merge(self, out: Tensor, options: dict) -> Tensor:
        """``attn1_output_patch``: the tiles back into one map per image."""
        if self._pending is None:
            return out
        nh, nw, h, w = self._pending
        self._pending = None
        channels = out.shape[-1]
        th, tw = h // nh, w // nw
        # [B·nh·nw, th·tw, C] -> [B, (nh th nw tw), C]
        out = out.reshape(-1, nh, nw, th, tw, channels).permute(0, 1, 3, 2, 4, 5)
        return out.reshape(-1, nh * th * nw * tw, channels)
