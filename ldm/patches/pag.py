"""Perturbed-Attention Guidance (Ahn et al. 2024, arXiv 2403.17377), as ComfyUI's node: after
CFG, the positive side is predicted again with the middle block's self-attention map replaced
by the identity (each token attends only to itself, so the output is its value), and the result
is pushed away from that degraded prediction: ``cfg + scale·(cond - perturbed)``.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from ldm.patches.guidance_calls import predict_side, with_attn1_replaced

PERTURBED_BLOCK = ("middle", 0)


def identity_attention(q: Tensor, k: Tensor, v: Tensor, extra_options: dict, mask=None) -> Tensor:
    """An ``attn1`` replacement whose attention map is the identity: the output is ``v``."""
    return v


def pag_post_cfg(scale: float) -> Callable[[dict], Tensor]:
    """The ``sampler_post_cfg_function`` of PAG at ``scale``."""

    def post_cfg(args: dict) -> Tensor:
        denoised = args["denoised"]
        if scale == 0:
            return denoised
        perturbed_model = with_attn1_replaced(args["model"], identity_attention, PERTURBED_BLOCK)
        perturbed = predict_side(perturbed_model, args["cond"], args["input"], args["sigma"])
        return denoised + (args["cond_denoised"] - perturbed) * scale

    return post_cfg
