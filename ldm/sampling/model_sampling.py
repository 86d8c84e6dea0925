"""Discrete noise schedules of the Stable Diffusion families and the eps / v parameterisations.

Samplers here work in the k-diffusion "sigma space" of Karras et al. (2022): ``x = x0 + sigma·n``
with ``n ~ N(0, I)``. The SD networks were trained in DDPM's variance-preserving space
``x_vp = sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·n`` (Ho et al., 2020), so ``sigma = sqrt((1-ᾱ)/ᾱ)`` and the network
sees ``x_vp = x / sqrt(sigma² + 1)`` (``calculate_input``). The two parameterisations differ only
in how the network output becomes the x0 estimate (``calculate_denoised``):

- eps-prediction (SD1.x, SD2 base 512, SDXL): ``x0 = x - sigma·eps``;
- v-prediction (SD2 768-v, the x4 upscaler; Salimans & Ho 2022, "Progressive Distillation"):
  ``x0 = x/(sigma²+1) - v·sigma/sqrt(sigma²+1)``.

The discrete timestep of a sigma is what the UNet's time embedding receives. ComfyUI gives the
network the *nearest* table index (``ModelSampling.timestep``), while diffusers' Karras-sigma
schedules and k-diffusion's ``DiscreteSchedule`` interpolate log-sigma linearly between table
entries; :meth:`DiscreteSchedule.sigma_to_t` offers both.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ScheduleConfig:
    """A DDPM beta schedule, as the checkpoints' training configs give it."""

    #: "scaled_linear": betas evenly spaced in sqrt space (CompVis calls this "linear"; every SD
    #: family uses it); "linear": betas evenly spaced.
    beta_schedule: str = "scaled_linear"
    linear_start: float = 0.00085
    linear_end: float = 0.012
    timesteps: int = 1000
    #: Rescale to zero terminal SNR (Lin et al. 2023, "Common Diffusion Noise Schedules and
    #: Sample Steps are Flawed"), for checkpoints trained that way (ComfyUI's ``zsnr``).
    zsnr: bool = False
    #: An explicit ᾱ table (one value per timestep), as a CompVis checkpoint stores it in its
    #: ``alphas_cumprod`` buffer; when set it is the schedule and the beta fields only describe it.
    alphas_cumprod_table: tuple[float, ...] | None = None


def schedule_from_alphas_cumprod(table: Tensor, linear_start: float, linear_end: float) -> ScheduleConfig:
    """The schedule a checkpoint's ``alphas_cumprod`` buffer ``table`` [T] defines (the published
    ``linear_start`` / ``linear_end`` of the model are kept for description only)."""
    values = tuple(float(v) for v in table.detach().double().reshape(-1).tolist())
    if not values or not all(0.0 < v <= 1.0 for v in values):
        raise ValueError("an alphas_cumprod table must hold values in (0, 1]")
    if any(b > a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError("an alphas_cumprod table must not increase")
    return ScheduleConfig("scaled_linear", linear_start, linear_end, len(values), alphas_cumprod_table=values)


#: SD1.x, SD2.x, SDXL (base and refiner).
SD_SCHEDULE = ScheduleConfig()
#: The SD2 x4 upscaler: v-prediction with betas 1e-4 … 0.02 (its ``x4-upscaling.yaml``).
X4_UPSCALER_SCHEDULE = ScheduleConfig(linear_start=0.0001, linear_end=0.02)

#: ᾱ of the last timestep after the zero-terminal-SNR rescale. Exactly zero would make sigma
#: infinite; ComfyUI pins it to this value, giving sigma_max ≈ 4518.
_ZSNR_LAST_ALPHA_BAR = 4.8973451890853435e-08


def make_betas(config: ScheduleConfig) -> Tensor:
    """The float64 beta table of ``config``, shape ``[timesteps]``."""
    if config.beta_schedule == "scaled_linear":
        return torch.linspace(config.linear_start ** 0.5, config.linear_end ** 0.5,
                              config.timesteps, dtype=torch.float64) ** 2
    if config.beta_schedule == "linear":
        return torch.linspace(config.linear_start, config.linear_end, config.timesteps,
                              dtype=torch.float64)
    raise ValueError(f"unknown beta schedule {config.beta_schedule!r}")


def alphas_cumprod(config: ScheduleConfig) -> Tensor:
    """ᾱ_t = ∏(1 - β_s) (or the config's explicit table), float64, shape ``[timesteps]``
    (before any zsnr rescale)."""
    if config.alphas_cumprod_table is not None:
        return torch.tensor(config.alphas_cumprod_table, dtype=torch.float64)
    return torch.cumprod(1.0 - make_betas(config), dim=0)


def rescale_zero_terminal_snr_sigmas(sigmas: Tensor) -> Tensor:
    """Shift and scale sqrt(ᾱ) so the last step has (almost) zero SNR, keeping the first step's."""
    sqrt_ab = (1.0 / (sigmas * sigmas + 1.0)).sqrt()
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    sqrt_ab = (sqrt_ab - last) * (first / (first - last))
    alpha_bar = sqrt_ab ** 2
    alpha_bar[-1] = _ZSNR_LAST_ALPHA_BAR
    return ((1.0 - alpha_bar) / alpha_bar).sqrt()


def _as_batch_view(sigma: Tensor, ndim: int) -> Tensor:
    """sigma ``[B]`` (or scalar) viewed as ``[B, 1, …]`` to broadcast against an ``ndim`` tensor."""
    sigma = torch.as_tensor(sigma)
    if sigma.ndim == 0:
        return sigma
    return sigma.reshape(sigma.shape[:1] + (1,) * (ndim - 1))


class SigmaTable:
    """A schedule's ascending table ``sigmas`` ``[T]`` (and ``log_sigmas``): its ends are the range."""

    sigmas: Tensor
    log_sigmas: Tensor

    @property
    def sigma_min(self) -> Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> Tensor:
        return self.sigmas[-1]


class DiscreteSchedule(SigmaTable):
    """The sigma table of a discrete schedule and the maps between sigma and timestep."""

    def __init__(self, config: ScheduleConfig = SD_SCHEDULE):
        self.config = config
        sigmas = ((1.0 - alphas_cumprod(config)) / alphas_cumprod(config)).sqrt()
        if config.zsnr:
            sigmas = rescale_zero_terminal_snr_sigmas(sigmas)
        # Stored in float32 like the checkpoints' own buffers; log taken in float64 first.
        self.sigmas = sigmas.float()            # [T], ascending
        self.log_sigmas = sigmas.log().float()  # [T]

    @property
    def alphas_cumprod(self) -> Tensor:
        """ᾱ implied by the (possibly rescaled) sigma table, float32 ``[T]``."""
        return 1.0 / (self.sigmas ** 2 + 1.0)

    def sigma_to_t(self, sigma: Tensor, quantize: bool = False) -> Tensor:
        """Timestep(s) of ``sigma``: nearest index if ``quantize``, else log-sigma interpolation."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        log_sigma = sigma.log().to(self.log_sigmas.device)
        if quantize:
            dists = (log_sigma.reshape(-1, 1) - self.log_sigmas.reshape(1, -1)).abs()
            return dists.argmin(dim=1).reshape(sigma.shape).to(sigma.device)
        flat = log_sigma.reshape(-1)
        high = torch.searchsorted(self.log_sigmas, flat).clamp(1, len(self.log_sigmas) - 1)
        low = high - 1
        lo, hi = self.log_sigmas[low], self.log_sigmas[high]
        w = ((flat - lo) / (hi - lo)).clamp(0.0, 1.0)
        return (low.float() + w).reshape(sigma.shape).to(sigma.device)

    def t_to_sigma(self, t: Tensor) -> Tensor:
        """Sigma at (fractional) timestep(s) ``t``, interpolating log-sigma linearly."""
        t = torch.as_tensor(t)
        tf = t.float().to(self.log_sigmas.device).clamp(0, len(self.sigmas) - 1)
        low = tf.floor().long()
        high = tf.ceil().long()
        w = tf.frac()
        log_sigma = (1.0 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]
        return log_sigma.exp().to(t.device)

    def percent_to_sigma(self, percent: float) -> float:
        """Sigma at ``percent`` of the way through sampling (0 = start, pure noise; 1 = end).

        Used for conditioning timestep ranges and ControlNet start/end. Outside (0, 1) it returns
        a sigma above / below every sigma a schedule can have, as ComfyUI does.
        """
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        last = len(self.sigmas) - 1
        return float(self.t_to_sigma(torch.tensor((1.0 - percent) * last)))


class EpsPrediction:
    """The network predicts the added noise (Ho et al. 2020)."""

    name = "eps"

    def calculate_input(self, sigma: Tensor, x: Tensor) -> Tensor:
        """``c_in = 1/sqrt(sigma² + 1)``: sigma-space x to the network's variance-preserving input."""
        return x / (_as_batch_view(sigma, x.ndim) ** 2 + 1.0) ** 0.5

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        return x - model_output * _as_batch_view(sigma, x.ndim)

    def noise_scaling(self, sigma: Tensor, noise: Tensor, latent_image: Tensor, max_denoise: bool) -> Tensor:
        """See :meth:`ModelSampling.noise_scaling`; a parameterisation may start differently."""
        s = _as_batch_view(sigma, noise.ndim)
        scale = (1.0 + s ** 2) ** 0.5 if max_denoise else s
        return noise * scale + latent_image

    def inverse_noise_scaling(self, sigma: Tensor, latent: Tensor) -> Tensor:
        return latent


class VPrediction(EpsPrediction):
    """The network predicts v = sqrt(ᾱ)·n - sqrt(1-ᾱ)·x0 (Salimans & Ho 2022)."""

    name = "v"

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        s = _as_batch_view(sigma, x.ndim)
        return x / (s ** 2 + 1.0) - model_output * s / (s ** 2 + 1.0) ** 0.5


PREDICTIONS = {"eps": EpsPrediction(), "v": VPrediction()}


@dataclass(frozen=True)
class ModelSampling:
    """Schedule + parameterisation: everything a sampler needs to know about a model's noise."""

    schedule: DiscreteSchedule
    prediction: EpsPrediction

    @property
    def sigmas(self) -> Tensor:
        return self.schedule.sigmas

    @property
    def sigma_min(self) -> Tensor:
        return self.schedule.sigma_min

    @property
    def sigma_max(self) -> Tensor:
        return self.schedule.sigma_max

    def timestep(self, sigma: Tensor) -> Tensor:
        """The timestep the network is given for ``sigma``: the nearest table index (as ComfyUI)."""
        return self.schedule.sigma_to_t(sigma, quantize=True)

    def sigma(self, timestep: Tensor) -> Tensor:
        return self.schedule.t_to_sigma(timestep)

    def percent_to_sigma(self, percent: float) -> float:
        return self.schedule.percent_to_sigma(percent)

    def calculate_input(self, sigma: Tensor, x: Tensor) -> Tensor:
        return self.prediction.calculate_input(sigma, x)

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        return self.prediction.calculate_denoised(sigma, model_output, x)

    def is_max_denoise(self, sigmas: Tensor) -> bool:
        """Whether a schedule starts from pure noise (its first sigma is the model's largest)."""
        first, top = float(sigmas[0]), float(self.sigma_max)
        return math.isclose(top, first, rel_tol=1e-05) or first > top

    def noise_scaling(self, sigma: Tensor, noise: Tensor, latent_image: Tensor,
                      max_denoise: bool = False) -> Tensor:
        """The sampler's start: ``latent + noise·sigma``, or ``noise·sqrt(1+sigma²)`` from pure noise.

        ``max_denoise`` scales the noise to the variance of x at sigma_max when the latent holds
        no signal, which is what the VP forward process gives for ᾱ → 0 (txt2img). Otherwise
        (img2img, denoise < 1) the latent is noised to ``sigma``.
        """
        return self.prediction.noise_scaling(sigma, noise, latent_image, max_denoise)

    def inverse_noise_scaling(self, sigma: Tensor, latent: Tensor) -> Tensor:
        """Undo :meth:`noise_scaling` at the end of sampling: the identity for eps / v models."""
        return self.prediction.inverse_noise_scaling(sigma, latent)


def model_sampling(prediction: str = "eps", config: ScheduleConfig = SD_SCHEDULE) -> ModelSampling:
    """Build the :class:`ModelSampling` of a parameterisation ("eps" | "v") and a schedule."""
    try:
        pred = PREDICTIONS[prediction]
    except KeyError:
        raise ValueError(f"unknown prediction type {prediction!r}; expected one of {sorted(PREDICTIONS)}")
    return ModelSampling(DiscreteSchedule(config), pred)


def model_sampling_for_family(family: str, prediction: str, zsnr: bool = False,
                              schedule: ScheduleConfig | None = None) -> ModelSampling:
    """The sampling of a checkpoint family (see docs/engine-contract.md ``ModelHandle.family``);
    ``schedule`` is a model's own schedule where the family has none (the CompVis LDMs, whose
    schedules differ per model: ``ModelHandle.schedule``)."""
    base = schedule if schedule is not None else X4_UPSCALER_SCHEDULE if family == "sd_x4" else SD_SCHEDULE
    return model_sampling(prediction, dataclasses.replace(base, zsnr=zsnr))
