"""Token Merging for Stable Diffusion (Bolya & Hoffman 2023, arXiv 2303.17603; dbolya/tomesd),
as ComfyUI's TomePatchModel applies it: at full latent resolution, the self-attention queries are
cut down by merging the ``ratio`` most redundant tokens, and the output is spread back.

Bipartite soft matching with a 2-D random grid: in every ``sy × sx`` cell one token is a
destination, the rest are sources; each source's most cosine-similar destination is its match,
and the ``r`` sources with the best matches are averaged into their destinations. Unmerging gives
each merged source its destination's output. Keys and values are left whole (ComfyUI merges
the queries only). ComfyUI draws the grid from torch's global generator; here each call draws
from a generator seeded by the step's sigma, so a prompt gives the same image every time.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

STRIDE = 2  # sx = sy: one destination per 2×2 cell
MAX_DOWNSAMPLE = 1  # merge only at full latent resolution


def _identity(x: Tensor) -> Tensor:
    return x


def bipartite_soft_matching_2d(metric: Tensor, w: int, h: int, sx: int, sy: int, r: int,
                               generator: torch.Generator | None = None) -> tuple[Callable, Callable]:
    """``(merge, unmerge)`` for tokens ``metric`` [B, N, C] laid out ``h × w``; ``r`` tokens are
    removed. ``generator`` None takes each cell's top-left token as its destination."""
    batch, tokens, _ = metric.shape
    if r <= 0 or w == 1 or h == 1:
        return _identity, _identity
    device = metric.device
    with torch.no_grad():
        cells_h, cells_w = h // sy, w // sx
        if generator is None:
            chosen = torch.zeros(cells_h, cells_w, 1, dtype=torch.int64)
        else:
            chosen = torch.randint(sy * sx, (cells_h, cells_w, 1), generator=generator)
        # -1 marks each cell's destination, 0 its sources; positions outside whole cells are sources
        marks = torch.zeros(cells_h, cells_w, sy * sx, dtype=torch.int64)
        marks.scatter_(2, chosen, -torch.ones_like(chosen))
        marks = marks.view(cells_h, cells_w, sy, sx).transpose(1, 2).reshape(cells_h * sy, cells_w * sx)
        grid = torch.zeros(h, w, dtype=torch.int64)
        grid[:cells_h * sy, :cells_w * sx] = marks
        order = grid.reshape(1, -1, 1).argsort(dim=1, stable=True).to(device)  # destinations first
        num_dst = cells_h * cells_w
        src_idx, dst_idx = order[:, num_dst:, :], order[:, :num_dst, :]

        def split(x: Tensor) -> tuple[Tensor, Tensor]:
            channels = x.shape[-1]
            return (torch.gather(x, 1, src_idx.expand(x.shape[0], tokens - num_dst, channels)),
                    torch.gather(x, 1, dst_idx.expand(x.shape[0], num_dst, channels)))

        normed = metric / metric.norm(dim=-1, keepdim=True)
        a, b = split(normed)
        scores = a @ b.transpose(-1, -2)  # [B, sources, destinations] cosine similarity
        r = min(a.shape[1], r)
        best, match = scores.max(dim=-1)
        ranked = best.argsort(dim=-1, descending=True)[..., None]
        kept = ranked[..., r:, :]    # sources left alone
        merged = ranked[..., :r, :]  # sources merged away
        target = torch.gather(match[..., None], 1, merged)  # their destinations

    def merge(x: Tensor) -> Tensor:
        src, dst = split(x)
        n, count, channels = src.shape
        unmerged = torch.gather(src, 1, kept.expand(n, count - r, channels))
        moving = torch.gather(src, 1, merged.expand(n, r, channels))
        dst = dst.scatter_reduce(1, target.expand(n, r, channels), moving, reduce="mean")
        return torch.cat([unmerged, dst], dim=1)

    def unmerge(x: Tensor) -> Tensor:
        kept_count = kept.shape[1]
        unmerged, dst = x[:, :kept_count], x[:, kept_count:]
        channels = x.shape[-1]
        restored = torch.gather(dst, 1, target.expand(batch, r, channels))
        out = torch.zeros(batch, tokens, channels, device=x.device, dtype=x.dtype)
        src_positions = src_idx.expand(batch, src_idx.shape[1], 1)
        out.scatter_(1, dst_idx.expand(batch, num_dst, channels), dst)
        out.scatter_(1, torch.gather(src_positions, 1, kept).expand(batch, kept_count, channels), unmerged)
        out.scatter_(1, torch.gather(src_positions, 1, merged).expand(batch, r, channels), restored)
        return out

    return merge, unmerge


class TomePatches:
    """The attn1 pair: ``split`` merges the queries, ``merge`` unmerges the attention output."""

    def __init__(self, ratio: float):
        self.ratio = ratio
        self._unmerge: Callable = _identity

    def split(self, n: Tensor, context: Tensor, value: Tensor, options: dict):
        """``attn1_patch``."""
        _, _, height, width = options["original_shape"]
        downsample = int(math.ceil(math.sqrt((height * width) // n.shape[1])))
        self._unmerge = _identity
        if downsample > MAX_DOWNSAMPLE:
            return n, context, value
        sigmas = options.get("sigmas")
        seed = hash(round(float(sigmas[0]), 6)) & 0x7FFFFFFF if sigmas is not None else 0
        merge, self._unmerge = bipartite_soft_matching_2d(
            n, math.ceil(width / downsample), math.ceil(height / downsample), STRIDE, STRIDE,
            int(n.shape[1] * self.ratio), torch.Generator().manual_seed(seed))
        return merge(n), context, value

    def merge(self, out: Tensor, options: dict) -> Tensor:
        """``attn1_output_patch``."""
        return self._unmerge(out)
