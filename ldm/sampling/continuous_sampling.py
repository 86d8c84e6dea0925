"""Continuous-time model samplings: ComfyUI's ``ModelSamplingContinuousEDM`` and ``…ContinuousV``.

Models trained on a continuous sigma range (Playground v2.5, SDXL/SD2 v-prediction fine-tunes,
Cosmos) have no discrete timestep table. The schedule is the range ``[sigma_min, sigma_max]``;
for the schedulers that read a table it is sampled at 1000 log-spaced sigmas, and a sampling
percentage maps to a sigma log-linearly between the two ends. The network's time input is a
function of sigma:

- EDM (Karras et al. 2022, "Elucidating the Design Space…", Table 1 ``c_noise``): ``t = ln(σ)/4``;
- continuous v-diffusion (Salimans & Ho 2022; the angle of the sigma): ``t = atan(σ)·2/π``;
- Cosmos rectified flow: ``t = σ/(σ+1)``.

The parameterisations follow EDM's preconditioning with a data standard deviation σd
(``c_in = 1/sqrt(σ²+σd²)``, ``c_skip = σd²/(σ²+σd²)``, ``c_out = σ·σd/sqrt(σ²+σd²)``, ``F`` the
network output):

- ``eps``: ``D = x - σ·F``;
- ``v_prediction``: ``D = c_skip·x - c_out·F``;
- ``edm``: ``D = c_skip·x + c_out·F``;
- ``cosmos_rflow``: with ``t = σ/(σ+1)`` the network sees ``(1-t)·x`` and ``D = (1-t)·x - t·F``; it
  starts from ``latent + σ·noise`` even from pure noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ldm.latent_formats import LatentFormat
from ldm.sampling.model_sampling import EpsPrediction, ModelSampling, SigmaTable, _as_batch_view

#: How many sigmas the schedule's table holds (what ComfyUI registers for its schedulers).
TABLE_SIZE = 1000

#: ``ModelSamplingContinuousEDM``'s ``sampling`` choices, in ComfyUI's order.
CONTINUOUS_EDM_SAMPLING_NAMES = ("v_prediction", "edm", "edm_playground_v2.5", "eps", "cosmos_rflow")


class ContinuousEDMSchedule(SigmaTable):
    """A continuous sigma range with EDM's time input ``ln(σ)/4``."""

    def __init__(self, sigma_min: float, sigma_max: float):
        self.sigmas = torch.linspace(math.log(sigma_min), math.log(sigma_max), TABLE_SIZE).exp()  # [1000]
        self.log_sigmas = self.sigmas.log()

    def sigma_to_t(self, sigma: Tensor, quantize: bool = False) -> Tensor:
        """The network's time input for ``sigma`` (continuous: ``quantize`` has no table to snap to)."""
        return 0.25 * torch.as_tensor(sigma).log()

    def t_to_sigma(self, t: Tensor) -> Tensor:
        return (torch.as_tensor(t) / 0.25).exp()

    def percent_to_sigma(self, percent: float) -> float:
        """Log-linear between sigma_max (0) and sigma_min (1); beyond them as the discrete schedule."""
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        log_min, log_max = math.log(float(self.sigma_min)), math.log(float(self.sigma_max))
        return math.exp((log_max - log_min) * (1.0 - percent) + log_min)


class ContinuousVSchedule(ContinuousEDMSchedule):
    """Time input ``atan(σ)·2/π``: the angle of the sigma, scaled to 0 … 1."""

    def sigma_to_t(self, sigma: Tensor, quantize: bool = False) -> Tensor:
        return torch.as_tensor(sigma).atan() / math.pi * 2

    def t_to_sigma(self, t: Tensor) -> Tensor:
        return (torch.as_tensor(t) * math.pi / 2).tan()


class CosmosRFlowSchedule(ContinuousEDMSchedule):
    """Time input ``σ/(σ+1)`` (the rectified-flow time of the sigma); times at or past
    sigma_max's map back to sigma_max."""

    def sigma_to_t(self, sigma: Tensor, quantize: bool = False) -> Tensor:
        sigma = torch.as_tensor(sigma)
        return sigma / (sigma + 1)

    def t_to_sigma(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t)
        top = self.sigma_max
        return torch.where(t >= top / (top + 1), top.to(t), t / (1 - t))


class SigmaDataEps(EpsPrediction):
    """eps prediction whose input is scaled by ``1/sqrt(σ² + σd²)``."""

    name = "eps"

    def __init__(self, sigma_data: float = 1.0):
        self.sigma_data = sigma_data

    def calculate_input(self, sigma: Tensor, x: Tensor) -> Tensor:
        return x / (_as_batch_view(sigma, x.ndim) ** 2 + self.sigma_data ** 2) ** 0.5


class SigmaDataV(SigmaDataEps):
    """v prediction with data standard deviation σd (σd = 1 is the discrete schedules' v)."""

    name = "v"

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        s, sd = _as_batch_view(sigma, x.ndim), self.sigma_data
        return x * sd ** 2 / (s ** 2 + sd ** 2) - model_output * s * sd / (s ** 2 + sd ** 2) ** 0.5


class EDMPrediction(SigmaDataEps):
    """EDM's preconditioned denoiser ``c_skip·x + c_out·F``."""

    name = "edm"

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        s, sd = _as_batch_view(sigma, x.ndim), self.sigma_data
        return x * sd ** 2 / (s ** 2 + sd ** 2) + model_output * s * sd / (s ** 2 + sd ** 2) ** 0.5


class CosmosRFlowPrediction(EpsPrediction):
    """Rectified flow on the sigma scale: ``t = σ/(σ+1)``, velocity-style output."""

    name = "cosmos_rflow"

    def calculate_input(self, sigma: Tensor, x: Tensor) -> Tensor:
        t = _as_batch_view(torch.as_tensor(sigma) / (torch.as_tensor(sigma) + 1), x.ndim)
        return x * (1.0 - t)

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        t = _as_batch_view(torch.as_tensor(sigma) / (torch.as_tensor(sigma) + 1), x.ndim)
        return x * (1.0 - t) - model_output * t

    def noise_scaling(self, sigma: Tensor, noise: Tensor, latent_image: Tensor, max_denoise: bool) -> Tensor:
        return noise * _as_batch_view(sigma, noise.ndim) + latent_image


def continuous_edm_sampling(sampling: str, sigma_min: float, sigma_max: float) -> ModelSampling:
    """The :class:`ModelSampling` ``ModelSamplingContinuousEDM`` builds (``edm_playground_v2.5``
    is ``edm`` here; its latent format is the node's business)."""
    if sampling == "cosmos_rflow":
        return ModelSampling(CosmosRFlowSchedule(sigma_min, sigma_max), CosmosRFlowPrediction())
    predictions = {"eps": lambda: SigmaDataEps(1.0), "v_prediction": lambda: SigmaDataV(1.0),
                   "edm": lambda: EDMPrediction(0.5), "edm_playground_v2.5": lambda: EDMPrediction(0.5)}
    if sampling not in predictions:
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {list(CONTINUOUS_EDM_SAMPLING_NAMES)}")
    return ModelSampling(ContinuousEDMSchedule(sigma_min, sigma_max), predictions[sampling]())


def continuous_v_sampling(sigma_min: float, sigma_max: float) -> ModelSampling:
    """The :class:`ModelSampling` ``ModelSamplingContinuousV`` builds (v prediction, σd = 1)."""
    return ModelSampling(ContinuousVSchedule(sigma_min, sigma_max), SigmaDataV(1.0))


@dataclass(frozen=True)
class ChannelNormalizedFormat(LatentFormat):
    """A latent format that standardises each channel: ``(latent - mean)·scale/std``."""

    latents_mean: tuple[float, ...] = ()
    latents_std: tuple[float, ...] = ()

    def _stats(self, latent: Tensor) -> tuple[Tensor, Tensor]:
        shape = (1, len(self.latents_mean), 1, 1)
        mean = torch.tensor(self.latents_mean, device=latent.device, dtype=latent.dtype).view(shape)
        std = torch.tensor(self.latents_std, device=latent.device, dtype=latent.dtype).view(shape)
        return mean, std

    def process_in(self, latent: Tensor) -> Tensor:
        mean, std = self._stats(latent)
        return (latent - mean) * self.scale_factor / std

    def process_out(self, latent: Tensor) -> Tensor:
        mean, std = self._stats(latent)
        return latent * std / self.scale_factor + mean


#: Playground v2.5's SDXL-VAE latent statistics (its diffusers scheduler config), which
#: ``edm_playground_v2.5`` puts on the model with the EDM sampling.
PLAYGROUND_V2_5 = ChannelNormalizedFormat(
    name="SDXL_Playground_2_5", channels=4, scale_factor=0.5,
    latent_rgb_factors=((0.3920, 0.4054, 0.4549),
                        (-0.2634, -0.0196, 0.0653),
                        (0.0568, 0.1687, -0.0755),
                        (-0.3112, -0.2359, -0.2076)),
    taesd_decoder_name="taesdxl_decoder",
    latents_mean=(-1.6574, 1.886, -1.383, 2.5155),
    latents_std=(8.4927, 5.9022, 6.5498, 5.2299))
