"""``comfy.model_sampling``: ComfyUI's model-sampling classes, over Weft's schedules and predictions.

ComfyUI builds a model's sampling from two parts, and packs do the same: a *schedule* class
(``ModelSamplingDiscrete``: the sigma table, sigma ↔ timestep) and a *parameterisation* mixin
(``EPS``, ``V_PREDICTION``, ``X0``, ``IMG_TO_IMG``: network input scaling and the x0 estimate), as
``class ModelSamplingAdvanced(ModelSamplingDiscrete, EPS)``, constructed with a model config and
put on a MODEL with ``model.add_object_patch("model_sampling", instance)``.

Here the schedule part is Weft's :class:`ldm.sampling.model_sampling.DiscreteSchedule` (its beta
tables, zero-terminal-SNR rescale, nearest-index timesteps and log-sigma interpolation) and each
mixin hands its arithmetic to Weft's prediction object (:class:`EpsPrediction`,
:class:`VPrediction`, :class:`X0Prediction`, :class:`ImgToImgPrediction`). An instance therefore
offers everything Weft's sampler asks of a :class:`ModelSampling` (``sigmas``, ``sigma_min``,
``sigma_max``, ``timestep``, ``sigma``, ``percent_to_sigma``, ``calculate_input``,
``calculate_denoised``, ``noise_scaling``, ``inverse_noise_scaling``, ``is_max_denoise``) and
samples exactly as Weft's own sampling of the same schedule.

``isinstance`` also holds for Weft's own sampling objects (what ``model.get_model_object(
"model_sampling")`` returns for an unpatched MODEL or after the ModelSamplingDiscrete node): every
one is a ``ModelSamplingDiscrete``, and an ``EPS`` / ``V_PREDICTION`` / ``X0`` / ``IMG_TO_IMG`` when
its prediction is that one (v, x0 and LCM are ``EPS`` too, following ComfyUI's subclassing).

Weft samples the discrete DDPM schedules of SD1.x, SD2.x and SDXL only. The continuous EDM / v
samplings (CosXL, Playground v2.5: ``EDM``, ``ModelSamplingDiscreteEDM``,
``ModelSamplingContinuousEDM``, ``ModelSamplingContinuousV``) and the flow / cascade samplings of
other families (``CONST``, ``COSMOS_RFLOW``, ``ModelSamplingDiscreteFlow``, ``ModelSamplingFlux``,
``StableCascadeSampling``, ``ModelSamplingCosmosRFlow``) are real, subclassable classes that match
no Weft object and raise :class:`_weft_absent.NotInWeftError` when an instance is made (also as a
mixin of a pack's own class). Beta schedules other than "linear" and "sqrt_linear" raise too.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from _weft_absent import OTHER_FAMILIES, Feature, NotInWeftError, absent_class
from comfy._kinds import KindMeta
from ldm.sampling.discrete_variants import ImgToImgPrediction, X0Prediction, family_schedule
from ldm.sampling.model_sampling import (DiscreteSchedule, EpsPrediction, ModelSampling,
                                         ScheduleConfig, VPrediction)
from ldm.sampling.model_sampling import \
    rescale_zero_terminal_snr_sigmas as _weft_rescale_zsnr

CONTINUOUS_SAMPLINGS = Feature("continuous-time EDM and v model samplings (CosXL, Playground v2.5)",
                               planned=False)
BETA_SCHEDULES = Feature("beta schedules other than linear and sqrt_linear (cosine, sqrt, "
                         "squaredcos_cap_v2)", planned=False)

#: ComfyUI's beta-schedule names -> Weft's (CompVis "linear" is evenly spaced in sqrt space).
_WEFT_BETA_SCHEDULE = {"linear": "scaled_linear", "sqrt_linear": "linear"}


def rescale_zero_terminal_snr_sigmas(sigmas: Tensor) -> Tensor:
    """A sigma table rescaled to zero terminal SNR (Weft's rescale; the input is not modified)."""
    return _weft_rescale_zsnr(sigmas.clone())


def reshape_sigma(sigma: Tensor, noise_dim: int) -> Tensor:
    """One sigma as a 0-d tensor, a batch of them as ``[B, 1, …]`` to broadcast over ``noise_dim`` dims."""
    if sigma.nelement() == 1:
        return sigma.view(())
    return sigma.view(sigma.shape[:1] + (1,) * (noise_dim - 1))


def _weft_sampling_with(prediction: type):
    """``isinstance`` predicate: a Weft ModelSampling whose prediction is a ``prediction``."""
    return staticmethod(lambda obj: isinstance(obj, ModelSampling) and isinstance(obj.prediction, prediction))


# -- parameterisations ---------------------------------------------------------------------------

class EPS(metaclass=KindMeta):
    """eps-prediction (SD1.x, SD2 512, SDXL): the network predicts the added noise."""

    __weft_is__ = _weft_sampling_with(EpsPrediction)
    #: Weft's parameterisation these methods run.
    _weft_prediction = EpsPrediction()
    sigma_data = 1.0

    def _unit_sigma_data(self) -> bool:
        return float(self.sigma_data) == 1.0

    def calculate_input(self, sigma: Tensor, noise: Tensor) -> Tensor:
        if self._unit_sigma_data():
            return self._weft_prediction.calculate_input(sigma, noise)
        s = reshape_sigma(torch.as_tensor(sigma), noise.ndim)
        return noise / (s * s + self.sigma_data ** 2) ** 0.5

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, model_input: Tensor) -> Tensor:
        return self._weft_prediction.calculate_denoised(sigma, model_output, model_input)

    def noise_scaling(self, sigma: Tensor, noise: Tensor, latent_image: Tensor, max_denoise: bool = False) -> Tensor:
        """The sampler's start: noise times sigma (times sqrt(1 + sigma²) from pure noise) plus the latent."""
        s = reshape_sigma(torch.as_tensor(sigma), noise.ndim)
        scale = (1.0 + s ** 2.0).sqrt() if max_denoise else s
        return noise * scale + latent_image

    def inverse_noise_scaling(self, sigma: Tensor, latent: Tensor) -> Tensor:
        return latent


class V_PREDICTION(EPS):
    """v-prediction (SD2 768-v, the x4 upscaler)."""

    __weft_is__ = _weft_sampling_with(VPrediction)
    _weft_prediction = VPrediction()

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, model_input: Tensor) -> Tensor:
        if self._unit_sigma_data():
            return self._weft_prediction.calculate_denoised(sigma, model_output, model_input)
        s = reshape_sigma(torch.as_tensor(sigma), model_output.ndim)
        data = self.sigma_data
        total = s * s + data ** 2
        return model_input * (data ** 2 / total) - model_output * s * data / total ** 0.5


class X0(EPS):
    """The network output is the x0 estimate."""

    __weft_is__ = _weft_sampling_with(X0Prediction)
    _weft_prediction = X0Prediction()


class IMG_TO_IMG(X0):
    """x0 prediction from the unscaled sampler state (Lotus-style image-to-image models)."""

    __weft_is__ = _weft_sampling_with(ImgToImgPrediction)
    _weft_prediction = ImgToImgPrediction()

    def calculate_input(self, sigma: Tensor, noise: Tensor) -> Tensor:
        return self._weft_prediction.calculate_input(sigma, noise)


EDM = absent_class(CONTINUOUS_SAMPLINGS, __name__, "EDM", (V_PREDICTION,))
CONST = absent_class(OTHER_FAMILIES, __name__, "CONST")
COSMOS_RFLOW = absent_class(OTHER_FAMILIES, __name__, "COSMOS_RFLOW")


# -- schedules ------------------------------------------------------------------------------------

def _refuse_absent_parts(instance: Any) -> None:
    """Raise if the instance's class mixes in one of the placeholder classes of this module."""
    feature = getattr(type(instance), "__weft_absent__", None)
    if feature is not None:
        absent = next(c for c in type(instance).__mro__ if "__weft_absent__" in c.__dict__)
        raise feature.error(f"{__name__}.{absent.__name__}")


class ModelSamplingDiscrete(nn.Module, metaclass=KindMeta):
    """The discrete DDPM schedule of a model config (``sampling_settings``: ``beta_schedule``,
    ``linear_start``, ``linear_end``, ``timesteps``, ``zsnr``), as Weft's :class:`DiscreteSchedule`.

    Settings a config leaves out default to ComfyUI's (SD's schedule), or to the family's schedule
    when the config is a Weft MODEL's (``model.model.model_config``; the x4 upscaler has its own).
    ``sigmas`` / ``log_sigmas`` are buffers (``.to(device)`` moves them); ``set_sigmas`` replaces
    the table.
    """

    __weft_is__ = staticmethod(lambda obj: isinstance(obj, ModelSampling)
                               and isinstance(obj.schedule, DiscreteSchedule))

    def __init__(self, model_config: Any = None, zsnr: bool | None = None) -> None:
        _refuse_absent_parts(self)
        super().__init__()
        settings = dict(getattr(model_config, "sampling_settings", None) or {})
        family = family_schedule(getattr(model_config, "family", "sd1") or "sd1")
        if zsnr is None:
            zsnr = settings.get("zsnr", False)
        self._register_schedule(given_betas=None, beta_schedule=settings.get("beta_schedule", "linear"),
                                timesteps=settings.get("timesteps", family.timesteps),
                                linear_start=settings.get("linear_start", family.linear_start),
                                linear_end=settings.get("linear_end", family.linear_end),
                                cosine_s=8e-3, zsnr=zsnr)
        self.sigma_data = 1.0

    def _register_schedule(self, given_betas: Any = None, beta_schedule: str = "linear", timesteps: int = 1000,
                           linear_start: float = 1e-4, linear_end: float = 2e-2, cosine_s: float = 8e-3,
                           zsnr: bool = False) -> None:
        """Build the sigma table from a beta schedule by name, or from ``given_betas``."""
        if given_betas is not None:
            betas = torch.as_tensor(given_betas, dtype=torch.float64).flatten()
            config = ScheduleConfig("linear", float(linear_start), float(linear_end), len(betas), bool(zsnr))
            alpha_bar = torch.cumprod(1.0 - betas, dim=0)
            sigmas = ((1.0 - alpha_bar) / alpha_bar).sqrt()
            if zsnr:
                sigmas = _weft_rescale_zsnr(sigmas)
            schedule = DiscreteSchedule(config)
            schedule.sigmas, schedule.log_sigmas = sigmas.float(), sigmas.log().float()
        else:
            if beta_schedule not in _WEFT_BETA_SCHEDULE:
                raise BETA_SCHEDULES.error(f"{__name__}.ModelSamplingDiscrete with beta_schedule={beta_schedule!r}")
            config = ScheduleConfig(_WEFT_BETA_SCHEDULE[beta_schedule], float(linear_start), float(linear_end),
                                    int(timesteps), bool(zsnr))
            schedule = DiscreteSchedule(config)
        self.num_timesteps = len(schedule.sigmas)
        self.linear_start = linear_start
        self.linear_end = linear_end
        self.zsnr = zsnr
        self._weft_table = schedule
        self.register_buffer("sigmas", schedule.sigmas)
        self.register_buffer("log_sigmas", schedule.log_sigmas)

    def set_sigmas(self, sigmas: Tensor) -> None:
        """Replace the sigma table (ascending, one per timestep)."""
        sigmas = torch.as_tensor(sigmas)
        self.register_buffer("sigmas", sigmas.float())
        self.register_buffer("log_sigmas", sigmas.log().float())

    def _schedule(self) -> DiscreteSchedule:
        """Weft's schedule over the current buffers (they may have been moved or replaced)."""
        schedule = self._weft_table
        schedule.sigmas, schedule.log_sigmas = self.sigmas, self.log_sigmas
        return schedule

    @property
    def sigma_min(self) -> Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> Tensor:
        return self.sigmas[-1]

    def timestep(self, sigma: Tensor) -> Tensor:
        """The table index nearest to ``sigma`` in log space (what the network is given)."""
        return self._schedule().sigma_to_t(sigma, quantize=True)

    def sigma(self, timestep: Tensor) -> Tensor:
        """Sigma at (fractional) ``timestep``, log-sigma interpolated."""
        return self._schedule().t_to_sigma(timestep)

    def percent_to_sigma(self, percent: float) -> float:
        return self._schedule().percent_to_sigma(percent)

    def is_max_denoise(self, sigmas: Tensor) -> bool:
        """Whether a schedule starts from pure noise (ComfyUI's KSampler test; Weft asks the sampling)."""
        first, top = float(sigmas[0]), float(self.sigma_max)
        return math.isclose(top, first, rel_tol=1e-05) or first > top


def _absent_schedule(feature: Feature, name: str, base: type = nn.Module) -> type:
    return absent_class(feature, __name__, name, (base,))


ModelSamplingDiscreteEDM = _absent_schedule(CONTINUOUS_SAMPLINGS, "ModelSamplingDiscreteEDM", ModelSamplingDiscrete)
ModelSamplingContinuousEDM = _absent_schedule(CONTINUOUS_SAMPLINGS, "ModelSamplingContinuousEDM")
ModelSamplingContinuousV = _absent_schedule(CONTINUOUS_SAMPLINGS, "ModelSamplingContinuousV",
                                            ModelSamplingContinuousEDM)
ModelSamplingDiscreteFlow = _absent_schedule(OTHER_FAMILIES, "ModelSamplingDiscreteFlow")
StableCascadeSampling = _absent_schedule(OTHER_FAMILIES, "StableCascadeSampling", ModelSamplingDiscrete)
ModelSamplingFlux = _absent_schedule(OTHER_FAMILIES, "ModelSamplingFlux")
ModelSamplingCosmosRFlow = _absent_schedule(OTHER_FAMILIES, "ModelSamplingCosmosRFlow", ModelSamplingContinuousEDM)


def time_snr_shift(alpha: float, t):
    """The timestep shift of flow models (SD3's ``shift``): ``alpha·t / (1 + (alpha-1)·t)``."""
    if alpha == 1.0:
        return t
    return alpha * t / (1 + (alpha - 1) * t)


def flux_time_shift(mu: float, sigma: float, t):
    """Flux's resolution-dependent shift: ``e^mu / (e^mu + (1/t - 1)^sigma)``."""
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** sigma)


def _model_sampling(model_config: Any, model_type: Any) -> ModelSamplingDiscrete:
    """ComfyUI's ``comfy.model_base.model_sampling(model_config, model_type)`` for the model types
    Weft has: a discrete schedule with eps or v prediction (``model_type`` 1 / 2, or its name)."""
    name = getattr(model_type, "name", model_type)
    mixins = {"EPS": EPS, 1: EPS, "V_PREDICTION": V_PREDICTION, 2: V_PREDICTION}
    if name not in mixins:
        raise NotInWeftError(f"model type {name!r} is not in Weft (ComfyUI's comfy.model_base.model_sampling); "
                             f"the node that needs it cannot run")

    class ModelSampling(ModelSamplingDiscrete, mixins[name]):
        pass

    return ModelSampling(model_config)
