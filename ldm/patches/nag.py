"""Normalized Attention Guidance (Chen et al. 2025, arXiv 2505.21179), as ComfyUI's NAGuidance:
in each self-attention output (``attn1_output_patch``) of a batch holding both sides, the
positive features ``z+`` are extrapolated away from the negative ones, their L1 norm is capped
at ``tau`` times that of ``z+`` and the result is blended back:

    z~ = s·z+ - (s - 1)·z-,  z^ = z~ · min(‖z~‖₁/‖z+‖₁, tau) / (‖z~‖₁/‖z+‖₁),
    z  = alpha·z^ + (1 - alpha)·z+

(norms over the feature axis, per token). The negative half is left as it was.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

NORM_EPS = 1e-6
POSITIVE, NEGATIVE = 0, 1  # ComfyUI's cond_or_uncond values


def nag_features(z_pos: Tensor, z_neg: Tensor, scale: float, alpha: float, tau: float) -> Tensor:
    """The guided positive features [B, L, C] (the formula above)."""
    guided = z_pos * scale - z_neg * (scale - 1.0)
    norm_pos = torch.norm(z_pos, p=1, dim=-1, keepdim=True).clamp_min(NORM_EPS)
    norm_guided = torch.norm(guided, p=1, dim=-1, keepdim=True).clamp_min(NORM_EPS)
    ratio = norm_guided / norm_pos
    guided = guided * (torch.clamp(ratio, max=tau) / ratio)
    return guided * alpha + z_pos * (1.0 - alpha)


def nag_output_patch(scale: float, alpha: float, tau: float) -> Callable[[Tensor, dict], Tensor]:
    """The ``attn1_output_patch`` of NAG; batches without both sides pass unchanged."""

    def patch(out: Tensor, extra_options: dict) -> Tensor:
        sides = extra_options.get("cond_or_uncond")
        if not sides or POSITIVE not in sides or NEGATIVE not in sides:
            return out
        per_side = out.shape[0] // len(sides)
        pos = slice(per_side * sides.index(POSITIVE), per_side * (sides.index(POSITIVE) + 1))
        neg = slice(per_side * sides.index(NEGATIVE), per_side * (sides.index(NEGATIVE) + 1))
        out = out.clone()
        out[pos] = nag_features(out[pos], out[neg], scale, alpha, tau)
        return out

    return patch
