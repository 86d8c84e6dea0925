"""CFG whose two sides run on two models (ComfyUI's ``DualModelGuider``).

The positive prompt is predicted by the main model, the negative by a second one (for example
an unconditional companion checkpoint), then combined by the main model's cfg hooks
(:func:`~ldm.sampling.guidance.cfg_combine`). The negative model runs with the main model's
hooks (its UNet patches and wrapper), as ComfyUI hands the main model's options to both calls;
it is skipped when the run's cfg is 1, and on any step a CFGOverride brings to 1. The main
model's ``predict_noise`` wrappers wrap the whole guided prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ldm.sampling.guidance import (CondEntry, Conditioning, GuidedModel, WrappedDenoiser, calc_cond_batch, cfg_combine,
                                   prepare_sides)
from ldm.sampling.hooks import effective_cfg


@dataclass
class DualModelDenoiser(WrappedDenoiser):
    model: GuidedModel
    negative_model: GuidedModel | None  # None: never evaluated (cfg 1)
    positive: list[CondEntry]
    negative: list[CondEntry]
    cfg: float

    def predict(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        hooks = self.model.hooks
        cfg = effective_cfg(hooks, float(sigma[0]), self.cfg)
        [cond] = calc_cond_batch(self.model, [self.positive], x, sigma)
        if self.negative_model is None or (math.isclose(cfg, 1.0) and not hooks.disable_cfg1_optimization):
            return cond
        [uncond] = calc_cond_batch(self.negative_model, [self.negative], x, sigma)
        return cfg_combine(self.model, cond, uncond, cfg, x, sigma, self.positive, self.negative)


@dataclass(frozen=True)
class DualModelGuider:
    """The guider object :func:`~ldm.sampling.sample.sample_with_sigmas` takes."""

    model: GuidedModel
    negative_model: GuidedModel
    positive: Conditioning
    negative: Conditioning
    cfg: float

    def prepare(self, noise_shape: torch.Size, latent_image: Tensor | None = None,
                denoise_mask: Tensor | None = None, seed: int = 0) -> DualModelDenoiser:
        [positive] = prepare_sides(self.model, (("positive", self.positive),), noise_shape, latent_image,
                                   denoise_mask, seed)
        if math.isclose(self.cfg, 1.0):
            return DualModelDenoiser(self.model, None, positive, [], self.cfg)
        [negative] = prepare_sides(self.negative_model, (("negative", self.negative),), noise_shape,
                                   latent_image, denoise_mask, seed)
        return DualModelDenoiser(self.model, self.negative_model, positive, negative, self.cfg)
