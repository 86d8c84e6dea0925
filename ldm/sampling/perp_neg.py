"""Perp-Neg (Armandpour et al. 2023, "Re-imagine the Negative Prompt Algorithm", arXiv 2304.04968).

With predictions of the positive prompt D₊, the negative prompt D₋ and an empty prompt D∅, the
negative direction keeps only its component perpendicular to the positive one, so a negative
prompt that overlaps the positive cannot cancel it:

    pos = D₊ - D∅,  neg = D₋ - D∅,  neg⊥ = neg - (⟨neg, pos⟩ / ‖pos‖²)·pos
    D = D∅ + cfg·(pos - neg_scale·neg⊥)

(the paper's eq. 5 with w_neg = cfg·neg_scale). As in ComfyUI the projection coefficient is
taken over the whole batch; when ``pos`` is zero (positive prompt identical to the empty one) it
is 0/0 and is taken as 0, which leaves plain CFG around the empty prompt.

:class:`PerpNegGuider` evaluates all three prompts in one batched model call (ComfyUI's
``PerpNegGuider``); :func:`perp_neg_cfg_function` is the deprecated ``PerpNeg`` model patch,
which evaluates the empty prompt in an extra model call inside the cfg hook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from ldm.sampling.guidance import (CondEntry, Conditioning, GuidedModel, WrappedDenoiser, calc_cond_batch,
                                   prepare_sides)
from ldm.sampling.hooks import effective_cfg


def perp_neg(positive: Tensor, negative: Tensor, empty: Tensor, neg_scale: float, cond_scale: float) -> Tensor:
    """The Perp-Neg combination of three predictions (any one parameterisation, e.g. x0)."""
    pos = positive - empty
    neg = negative - empty
    coefficient = torch.nan_to_num((neg * pos).sum() / torch.norm(pos) ** 2, nan=0.0, posinf=0.0, neginf=0.0)
    perpendicular = neg - coefficient * pos
    return empty + cond_scale * (pos - neg_scale * perpendicular)


def perp_neg_cfg_function(empty_conditioning: Conditioning, neg_scale: float) -> Callable[[dict[str, Any]], Tensor]:
    """A ``sampler_cfg_function``: the empty prompt is resolved and evaluated at each call."""

    def cfg_function(args: dict[str, Any]) -> Tensor:
        model: GuidedModel = args["model"]
        x, sigma = args["input"], args["sigma"]
        [empty_entries] = prepare_sides(model, (("negative", empty_conditioning),), x.shape)
        [empty] = calc_cond_batch(model, [empty_entries], x, sigma)
        return x - perp_neg(args["cond_denoised"], args["uncond_denoised"], empty, neg_scale, args["cond_scale"])

    return cfg_function


@dataclass
class PerpNegDenoiser(WrappedDenoiser):
    model: GuidedModel
    positive: list[CondEntry]
    negative: list[CondEntry]
    empty: list[CondEntry]
    cfg: float
    neg_scale: float

    def predict(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        hooks = self.model.hooks
        options = hooks.as_model_options()
        cfg = effective_cfg(hooks, float(sigma[0]), self.cfg)
        positive, negative, empty = self.positive, self.negative, self.empty
        if not hooks.disable_cfg1_optimization and math.isclose(self.neg_scale, 0.0):
            negative = None
            if math.isclose(cfg, 1.0):
                empty = None
        conds = [positive, negative, empty]
        out = calc_cond_batch(self.model, conds, x, sigma)
        # The cfg combination is Perp-Neg's own, so the model's pre/post-cfg hooks are run here.
        for pre in hooks.pre_cfg_functions:
            out = pre({"conds": conds, "conds_out": out, "cond_scale": cfg, "timestep": sigma, "input": x,
                       "sigma": sigma, "model": self.model, "model_options": options})
        pos_pred, neg_pred, empty_pred = out
        result = perp_neg(pos_pred, neg_pred, empty_pred, self.neg_scale, cfg)
        for post in hooks.post_cfg_functions:
            result = post({"denoised": result, "cond": positive, "uncond": negative, "cond_scale": cfg,
                           "model": self.model, "uncond_denoised": neg_pred, "cond_denoised": pos_pred,
                           "sigma": sigma, "model_options": options, "input": x, "empty_cond": empty,
                           "empty_cond_denoised": empty_pred})
        return result


@dataclass(frozen=True)
class PerpNegGuider:
    """The guider object :func:`~ldm.sampling.sample.sample_with_sigmas` takes."""

    model: GuidedModel
    positive: Conditioning
    negative: Conditioning
    empty: Conditioning
    cfg: float
    neg_scale: float

    def prepare(self, noise_shape: torch.Size, latent_image: Tensor | None = None,
                denoise_mask: Tensor | None = None, seed: int = 0) -> PerpNegDenoiser:
        positive, negative, empty = prepare_sides(
            self.model, (("positive", self.positive), ("negative", self.negative), ("negative", self.empty)),
            noise_shape, latent_image, denoise_mask, seed)
        return PerpNegDenoiser(self.model, positive, negative, empty, self.cfg, self.neg_scale)
