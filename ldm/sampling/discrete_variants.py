"""The model samplings ``ModelSamplingDiscrete`` can put on a model: eps, v, LCM, x0, img_to_img,
img_to_img_flow.

Each is a :class:`~ldm.sampling.model_sampling.ModelSampling` over the family's beta schedule
(optionally rescaled to zero terminal SNR), with one of these parameterisations:

- ``eps`` / ``v_prediction``: the usual ones (:mod:`ldm.sampling.model_sampling`);
- ``x0``: the network predicts the clean latent itself;
- ``img_to_img``: x0 prediction whose network sees the sampler state unscaled (ComfyUI's
  ``IMG_TO_IMG``, used by Lotus-style image-to-image models);
- ``img_to_img_flow``: the flow-matching counterpart (ComfyUI's ``IMG_TO_IMG_FLOW``): the network
  sees the state unscaled and predicts x0, sampling starts from the input latent itself (no noise
  is added) and the result is read back as ``1 - latent``;
- ``lcm``: Latent Consistency Models (Luo et al. 2023). LCM-distilled checkpoints were trained on
  50 of the 1000 DDPM timesteps (every 20th, ending at 999), so the sigma table keeps only those
  (:class:`DistilledSchedule`), and the x0 estimate is mixed with the input by the consistency
  boundary scalings ``c_skip = σd² / ((10t)² + σd²)``, ``c_out = 10t / sqrt((10t)² + σd²)``
  with σd = 0.5 and t the discrete timestep (the LCM paper's skipping-step parameterisation,
  timestep scaling 10, as diffusers' ``LCMScheduler`` and ComfyUI's ``LCM`` use).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ldm.sampling.model_sampling import (SD_SCHEDULE, X4_UPSCALER_SCHEDULE, DiscreteSchedule,
                                         EpsPrediction, ModelSampling, ScheduleConfig, VPrediction,
                                         _as_batch_view)

#: LCM's distillation kept this many of the 1000 training timesteps.
LCM_ORIGINAL_TIMESTEPS = 50
LCM_SIGMA_DATA = 0.5
LCM_TIMESTEP_SCALING = 10.0


class X0Prediction(EpsPrediction):
    """The network output is the x0 estimate."""

    name = "x0"

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        return model_output


class ImgToImgPrediction(X0Prediction):
    """x0 prediction from the unscaled sampler state (no ``1/sqrt(sigma² + 1)`` input scaling)."""

    name = "img_to_img"

    def calculate_input(self, sigma: Tensor, x: Tensor) -> Tensor:
        return x


class ImgToImgFlowPrediction(ImgToImgPrediction):
    """Flow image-to-image: x0 from the unscaled state; starts from the latent, no noise added;
    the sampled latent is read back inverted (``1 - latent``)."""

    name = "img_to_img_flow"

    def noise_scaling(self, sigma: Tensor, noise: Tensor, latent_image: Tensor, max_denoise: bool) -> Tensor:
        return latent_image

    def inverse_noise_scaling(self, sigma: Tensor, latent: Tensor) -> Tensor:
        return 1.0 - latent


class DistilledSchedule(DiscreteSchedule):
    """The sigma table of an LCM-distilled model: every ``T/50``-th training timestep.

    Kept timesteps are ``skip-1, 2·skip-1, …, T-1`` (skip = 20 for T = 1000). The network still
    receives timesteps on the 0 … T-1 scale: table index i is timestep ``i·skip + skip - 1``.
    """

    def __init__(self, config: ScheduleConfig = SD_SCHEDULE,
                 original_timesteps: int = LCM_ORIGINAL_TIMESTEPS):
        super().__init__(config)
        self.skip = config.timesteps // original_timesteps
        kept = torch.arange(self.skip - 1, config.timesteps, self.skip)[:original_timesteps]
        self.sigmas = self.sigmas[kept]
        self.log_sigmas = self.log_sigmas[kept]

    def sigma_to_t(self, sigma: Tensor, quantize: bool = False) -> Tensor:
        """Timestep on the full 0 … T-1 scale of the nearest kept sigma (always quantised)."""
        index = super().sigma_to_t(sigma, quantize=True)
        return index * self.skip + (self.skip - 1)

    def t_to_sigma(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t)
        return super().t_to_sigma((t.float() - (self.skip - 1)) / self.skip)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.t_to_sigma(torch.tensor((1.0 - percent) * (self.config.timesteps - 1))))


class LCMPrediction(EpsPrediction):
    """eps prediction plus LCM's consistency boundary condition (needs the timestep of sigma)."""

    name = "lcm"

    def __init__(self, schedule: DiscreteSchedule):
        self.schedule = schedule

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        t = _as_batch_view(self.schedule.sigma_to_t(sigma, quantize=True).to(x), x.ndim)
        s = _as_batch_view(sigma, x.ndim)
        x0 = x - model_output * s
        scaled = t * LCM_TIMESTEP_SCALING
        c_skip = LCM_SIGMA_DATA ** 2 / (scaled ** 2 + LCM_SIGMA_DATA ** 2)
        c_out = scaled / (scaled ** 2 + LCM_SIGMA_DATA ** 2) ** 0.5
        return c_out * x0 + c_skip * x


#: ``ModelSamplingDiscrete``'s ``sampling`` choices, in ComfyUI's order.
DISCRETE_SAMPLING_NAMES = ("eps", "v_prediction", "lcm", "x0", "img_to_img", "img_to_img_flow")


def family_schedule(family: str, zsnr: bool = False) -> ScheduleConfig:
    """The beta schedule a family was trained with (the x4 upscaler has its own)."""
    base = X4_UPSCALER_SCHEDULE if family == "sd_x4" else SD_SCHEDULE
    return ScheduleConfig(base.beta_schedule, base.linear_start, base.linear_end, base.timesteps, zsnr)


def discrete_model_sampling(family: str, sampling: str, zsnr: bool = False) -> ModelSampling:
    """The :class:`ModelSampling` ``ModelSamplingDiscrete`` builds for a model of ``family``."""
    config = family_schedule(family, zsnr)
    if sampling == "lcm":
        schedule = DistilledSchedule(config)
        return ModelSampling(schedule, LCMPrediction(schedule))
    predictions = {"eps": EpsPrediction(), "v_prediction": VPrediction(), "x0": X0Prediction(),
                   "img_to_img": ImgToImgPrediction(), "img_to_img_flow": ImgToImgFlowPrediction()}
    if sampling not in predictions:
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {list(DISCRETE_SAMPLING_NAMES)}")
    return ModelSampling(DiscreteSchedule(config), predictions[sampling])
