"""Guidance by two positive prompts against a negative one (ComfyUI's DualCFGGuider).

With predictions D₁ (``cond1``), D₂ (``cond2``, treated as a negative prompt for prompt-type
defaults) and D₋ (``negative``) of one batched model call:

- ``regular``: ``cfg(D₂, D₋, cfg_cond2_negative) + (D₁ - D₂)·cfg_conds`` — cond2 guided away
  from the negative, plus cond1's difference to cond2; at ``cfg_cond2_negative`` = 1 the negative
  is not evaluated, and when ``cfg_conds`` is 1 as well neither is cond2 (unless the model
  options set ``disable_cfg1_optimization``);
- ``nested``: ``D₋ + cfg_cond2_negative·(cfg(D₁, D₂, cfg_conds) - D₋)``.

``cfg(a, b, s)`` is :func:`~ldm.sampling.guidance.cfg_combine`, so the model's cfg hooks apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ldm.sampling.guidance import (CondEntry, Conditioning, GuidedModel, WrappedDenoiser, calc_cond_batch, cfg_combine,
                                   prepare_sides)


@dataclass
class DualCFGDenoiser(WrappedDenoiser):
    model: GuidedModel
    cond1: list[CondEntry]
    cond2: list[CondEntry]
    negative: list[CondEntry]
    cfg_conds: float
    cfg_cond2_negative: float
    nested: bool

    def predict(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        negative, middle, positive = self.negative, self.cond2, self.cond1
        if self.nested:
            neg_pred, mid_pred, pos_pred = calc_cond_batch(self.model, [negative, middle, positive], x, sigma)
            text = cfg_combine(self.model, pos_pred, mid_pred, self.cfg_conds, x, sigma, positive, middle)
            return neg_pred + self.cfg_cond2_negative * (text - neg_pred)
        if not self.model.hooks.disable_cfg1_optimization:
            if math.isclose(self.cfg_cond2_negative, 1.0):
                negative = None
                if math.isclose(self.cfg_conds, 1.0):
                    middle = None
        neg_pred, mid_pred, pos_pred = calc_cond_batch(self.model, [negative, middle, positive], x, sigma)
        guided = cfg_combine(self.model, mid_pred, neg_pred, self.cfg_cond2_negative, x, sigma, middle, negative)
        return guided + (pos_pred - mid_pred) * self.cfg_conds


@dataclass(frozen=True)
class DualCFGGuider:
    """The guider object :func:`~ldm.sampling.sample.sample_with_sigmas` takes."""

    model: GuidedModel
    cond1: Conditioning
    cond2: Conditioning
    negative: Conditioning
    cfg_conds: float
    cfg_cond2_negative: float
    nested: bool = False

    def prepare(self, noise_shape: torch.Size, latent_image: Tensor | None = None,
                denoise_mask: Tensor | None = None, seed: int = 0) -> DualCFGDenoiser:
        cond1, cond2, negative = prepare_sides(
            self.model, (("positive", self.cond1), ("negative", self.cond2), ("negative", self.negative)),
            noise_shape, latent_image, denoise_mask, seed)
        return DualCFGDenoiser(self.model, cond1, cond2, negative, self.cfg_conds, self.cfg_cond2_negative,
                               self.nested)
