"""Self-Attention Guidance (Hong et al. 2023, arXiv 2210.00939), as ComfyUI's node.

While the negative side is predicted, the middle block's self-attention map is kept. After CFG,
the regions that map attends to most (summed attention above ``threshold``) are blurred in the
negative prediction ``x0-``; that degraded image, re-noised with the step's noise, is predicted
again on the negative side, and the result is pushed away from what the blur lost:
``cfg + scale·(degraded - prediction(degraded))``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ldm.networks.unet_patches import attention_with_heads
from ldm.patches.guidance_calls import predict_side

RECORDED_BLOCK = ("middle", 0, 0)
BLUR_KERNEL = 9
MASK_THRESHOLD = 1.0
MIN_SIDE = 4  # maps this small have no room for the blur's padding: SAG leaves them alone
NEGATIVE = 1


def attention_with_scores(q: Tensor, k: Tensor, v: Tensor, heads: int) -> tuple[Tensor, Tensor]:
    """Softmax attention in float32: ``(out [B, Lq, heads·d], scores [B·heads, Lq, Lk])``."""
    batch, _, inner = q.shape
    dim_head = inner // heads
    # [B, L, heads·d] -> [B·heads, L, d]
    q, k, v = (t.reshape(batch, -1, heads, dim_head).transpose(1, 2).reshape(batch * heads, -1, dim_head)
               for t in (q, k, v))
    scores = (q.float() @ k.float().transpose(1, 2) * dim_head ** -0.5).softmax(dim=-1)
    out = (scores.to(v.dtype) @ v).reshape(batch, heads, -1, dim_head).transpose(1, 2)
    return out.reshape(batch, -1, inner), scores


def gaussian_blur(image: Tensor, kernel_size: int, sigma: float) -> Tensor:
    """``image`` [B, C, H, W] blurred per channel by a normalised Gaussian, edges reflected."""
    half = (kernel_size - 1) / 2
    taps = torch.exp(-0.5 * (torch.linspace(-half, half, kernel_size) / sigma) ** 2)
    taps = (taps / taps.sum()).to(device=image.device, dtype=image.dtype)
    kernel = (taps[:, None] * taps[None, :]).expand(image.shape[1], 1, kernel_size, kernel_size)
    pad = kernel_size // 2
    return F.conv2d(F.pad(image, [pad] * 4, mode="reflect"), kernel, groups=image.shape[1])


def _map_rows(tokens: int, height: int, width: int) -> int:
    """Rows of the attention map's grid: the divisor of ``tokens`` nearest ``sqrt(tokens·h/w)``."""
    guess = round(math.sqrt(height / width * tokens))
    for offset in range(math.floor(math.sqrt(tokens) / 2)):
        for rows in (guess + offset, max(1, guess - offset)):
            if tokens % rows == 0:
                return rows
    raise ValueError(f"no grid of {tokens} attention tokens fits a {height}x{width} latent")


def blurred_where_attended(x0: Tensor, scores: Tensor, sigma: float, threshold: float = MASK_THRESHOLD) -> Tensor:
    """``x0`` [B, C, h, w] blurred where the attention ``scores`` [B·heads, L, L] put more than
    ``threshold`` summed attention on a token (averaged over heads), sharp elsewhere."""
    batch, _, height, width = x0.shape
    tokens = scores.shape[-1]
    attended = scores.reshape(batch, -1, tokens, tokens).mean(1).sum(1) > threshold  # [B, L]
    rows = _map_rows(tokens, height, width)
    mask = attended.reshape(batch, rows, tokens // rows).unsqueeze(1).to(scores.dtype)
    mask = F.interpolate(mask, (height, width)).to(x0.dtype)
    return gaussian_blur(x0, BLUR_KERNEL, sigma) * mask + x0 * (1 - mask)


class SelfAttentionGuidance:
    """The pair SAG attaches: an ``attn1`` replacement at the middle block that keeps the
    negative side's attention scores, and the post-cfg function that uses them."""

    def __init__(self, scale: float, blur_sigma: float):
        self.scale = scale
        self.blur_sigma = blur_sigma
        self._scores: Tensor | None = None

    def attention(self, q: Tensor, k: Tensor, v: Tensor, extra_options: dict) -> Tensor:
        """``attn1`` replacement: plain attention, recording the negative side's scores."""
        heads = extra_options["n_heads"]
        sides = extra_options["cond_or_uncond"]
        if NEGATIVE not in sides:
            return attention_with_heads(q, k, v, heads)
        out, scores = attention_with_scores(q, k, v, heads)
        per_side = heads * (q.shape[0] // len(sides))
        index = sides.index(NEGATIVE)
        self._scores = scores[per_side * index:per_side * (index + 1)]
        return out

    def post_cfg(self, args: dict) -> Tensor:
        denoised = args["denoised"]
        if min(denoised.shape[2:]) <= MIN_SIDE or self._scores is None:
            return denoised
        uncond_x0 = args["uncond_denoised"]
        x = args["input"]
        degraded = blurred_where_attended(uncond_x0, self._scores, self.blur_sigma)
        # the degraded image carries the step's noise: x - x0- is that noise times sigma
        prediction = predict_side(args["model"], args["uncond"], degraded + x - uncond_x0, args["sigma"])
        return denoised + (degraded - prediction) * self.scale


def sag_hooks(scale: float, blur_sigma: float) -> tuple[Callable, Callable]:
    """``(attn1 replacement for RECORDED_BLOCK, post-cfg function)``."""
    guidance = SelfAttentionGuidance(scale, blur_sigma)
    return guidance.attention, guidance.post_cfg
