"""Rescaled classifier-free guidance (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample
Steps are Flawed", section 3.4), as a ``sampler_cfg_function`` hook (ComfyUI's RescaleCFG).

High cfg scales over-expose images; the paper rescales the guided prediction so its standard
deviation matches the conditional one, then blends: ``v = φ·v_cfg·std(v_cond)/std(v_cfg) +
(1-φ)·v_cfg``. The rescale is done in v-prediction space whatever the model predicts: with x in
sigma space and x0 an estimate, ``v = (x/(σ²+1) - x0)·sqrt(σ²+1)/σ`` and back
``x0 = x/(σ²+1) - v·σ/sqrt(σ²+1)``.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor


def _v_from_x0(x: Tensor, x0: Tensor, sigma: Tensor) -> Tensor:
    return (x / (sigma ** 2 + 1.0) - x0) * (sigma ** 2 + 1.0) ** 0.5 / sigma


def _x0_from_v(x: Tensor, v: Tensor, sigma: Tensor) -> Tensor:
    return x / (sigma ** 2 + 1.0) - v * sigma / (sigma ** 2 + 1.0) ** 0.5


def rescale_cfg_function(multiplier: float) -> Callable[[dict[str, Any]], Tensor]:
    """A ``sampler_cfg_function``: receives ComfyUI's argument dict (``cond``/``uncond`` are
    ``x - x0`` of each side, ``input`` is x, ``sigma`` is ``[B]``) and returns ``x - x0_guided``."""

    def cfg_function(args: dict[str, Any]) -> Tensor:
        x = args["input"]
        sigma = args["sigma"].reshape((-1,) + (1,) * (x.ndim - 1)).to(x)
        scale = args["cond_scale"]
        v_cond = _v_from_x0(x, x - args["cond"], sigma)
        v_uncond = _v_from_x0(x, x - args["uncond"], sigma)
        v_cfg = v_uncond + scale * (v_cond - v_uncond)
        dims = tuple(range(1, x.ndim))
        # torch.std's default (Bessel-corrected) estimate, the one ComfyUI uses.
        rescaled = v_cfg * (v_cond.std(dim=dims, keepdim=True) / v_cfg.std(dim=dims, keepdim=True))
        v_final = multiplier * rescaled + (1.0 - multiplier) * v_cfg
        return x - _x0_from_v(x, v_final, sigma)

    return cfg_function
