"""Scheduler and sigma nodes beyond BasicScheduler: formula schedules, published tables, and
edits of SIGMAS (ComfyUI's ``nodes_custom_sampler.py``, ``nodes_align_your_steps.py``,
``nodes_gits.py``, ``nodes_optimalsteps.py``).

Names, inputs, defaults and ranges are ComfyUI's (``advanced`` marks the inputs its editor folds
away); categories are those of ComfyUI's newest source
(``model/sampling/...``; nodes without a newer source keep the Oct 2025 copy's). The schedules and edits
are :mod:`ldm.sampling.schedulers_extra` and :mod:`ldm.sampling.sigma_edits`.
"""

from __future__ import annotations

from collections.abc import Callable

from ldm.sampling import schedulers, schedulers_extra, sigma_edits
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.noise_level_tables import ALIGN_YOUR_STEPS, OPTIMAL_STEPS

SCHEDULERS = "model/sampling/schedulers"
SIGMAS = "model/sampling/sigmas"
#: The schedulers whose ComfyUI modules (Align Your Steps, GITS, Optimal Steps) have no newer
#: source than the Oct 2025 copy keep that copy's category.
OLD_SCHEDULERS = "sampling/custom_sampling/schedulers"
STEPS = ("INT", {"default": 20, "min": 1, "max": 10000})
DENOISE = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})


def _float(default: float, minimum: float, maximum: float, step: float, advanced: bool = True) -> tuple:
    options = {"default": default, "min": minimum, "max": maximum, "step": step, "round": False}
    if advanced:
        options["advanced"] = True
    return ("FLOAT", options)


SIGMA_MAX = _float(14.614642, 0.0, 5000.0, 0.01)
SIGMA_MIN = _float(0.0291675, 0.0, 5000.0, 0.01)


class PolyexponentialScheduler:
    CATEGORY = SCHEDULERS
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": STEPS, "sigma_max": SIGMA_MAX, "sigma_min": SIGMA_MIN,
                             "rho": _float(1.0, 0.0, 100.0, 0.01)}}

    def get_sigmas(self, steps, sigma_max, sigma_min, rho):
        return (schedulers_extra.polyexponential_sigmas(steps, sigma_min, sigma_max, rho),)


class LaplaceScheduler:
    CATEGORY = SCHEDULERS
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": STEPS, "sigma_max": SIGMA_MAX, "sigma_min": SIGMA_MIN,
                             "mu": _float(0.0, -10.0, 10.0, 0.1), "beta": _float(0.5, 0.0, 10.0, 0.1)}}

    def get_sigmas(self, steps, sigma_max, sigma_min, mu, beta):
        return (schedulers_extra.laplace_sigmas(steps, sigma_min, sigma_max, mu, beta),)


class VPScheduler:
    CATEGORY = SCHEDULERS
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": STEPS, "beta_d": _float(19.9, 0.0, 5000.0, 0.01),
                             "beta_min": _float(0.1, 0.0, 5000.0, 0.01), "eps_s": _float(0.001, 0.0, 1.0, 0.0001)}}

    def get_sigmas(self, steps, beta_d, beta_min, eps_s):
        return (schedulers_extra.vp_sigmas(steps, beta_d, beta_min, eps_s),)


class BetaSamplingScheduler:
    CATEGORY = SCHEDULERS
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "steps": STEPS, "alpha": _float(0.6, 0.0, 50.0, 0.01),
                             "beta": _float(0.6, 0.0, 50.0, 0.01)}}

    def get_sigmas(self, model, steps, alpha, beta):
        return (schedulers.beta(model_sampling_of(model), steps, alpha, beta),)


class _TableScheduler:
    """A published noise-level table per model type (``TABLE``), resampled by ``SCHEDULE``."""

    CATEGORY = OLD_SCHEDULERS
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)
    TABLE: dict[str, tuple[float, ...]]
    STEPS: tuple  # the steps input: range and default differ per table
    SCHEDULE: Callable  # staticmethod (model_type, steps, denoise) -> SIGMAS

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_type": (list(cls.TABLE),), "steps": cls.STEPS, "denoise": DENOISE}}

    def get_sigmas(self, model_type, steps, denoise):
        return (self.SCHEDULE(model_type, steps, denoise),)


class AlignYourStepsScheduler(_TableScheduler):
    TABLE = ALIGN_YOUR_STEPS
    STEPS = ("INT", {"default": 10, "min": 1, "max": 10000})
    SCHEDULE = staticmethod(schedulers_extra.align_your_steps_sigmas)


class GITSScheduler:
    CATEGORY = OLD_SCHEDULERS
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"coeff": ("FLOAT", {"default": 1.20, "min": 0.80, "max": 1.50, "step": 0.05}),
                             "steps": ("INT", {"default": 10, "min": 2, "max": 1000}), "denoise": DENOISE}}

    def get_sigmas(self, coeff, steps, denoise):
        return (schedulers_extra.gits_sigmas(coeff, steps, denoise),)


class OptimalStepsScheduler(_TableScheduler):
    TABLE = OPTIMAL_STEPS
    STEPS = ("INT", {"default": 20, "min": 3, "max": 1000})
    SCHEDULE = staticmethod(schedulers_extra.optimal_steps_sigmas)


class SamplingPercentToSigma:
    CATEGORY = SIGMAS
    FUNCTION = "get_sigma"
    RETURN_TYPES = ("FLOAT",)
    RETURN_NAMES = ("sigma_value",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",),
            "sampling_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.0001}),
            "return_actual_sigma": ("BOOLEAN", {
                "default": False,
                "tooltip": "Return the actual sigma value instead of the value used for interval checks.\n"
                           "This only affects results at 0.0 and 1.0."})}}

    def get_sigma(self, model, sampling_percent, return_actual_sigma):
        return (sigma_edits.sampling_percent_to_sigma(model_sampling_of(model), sampling_percent,
                                                      return_actual_sigma),)


class SetFirstSigma:
    CATEGORY = SIGMAS
    FUNCTION = "set_first_sigma"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sigmas": ("SIGMAS",), "sigma": _float(136.0, 0.0, 20000.0, 0.001, advanced=False)}}

    def set_first_sigma(self, sigmas, sigma):
        return (sigma_edits.set_first_sigma(sigmas, sigma),)


class ExtendIntermediateSigmas:
    CATEGORY = SIGMAS
    FUNCTION = "extend"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sigmas": ("SIGMAS",), "steps": ("INT", {"default": 2, "min": 1, "max": 100}),
                             "start_at_sigma": _float(-1.0, -1.0, 20000.0, 0.01, advanced=False),
                             "end_at_sigma": _float(12.0, 0.0, 20000.0, 0.01, advanced=False),
                             "spacing": (list(sigma_edits.SPACINGS),)}}

    def extend(self, sigmas, steps, start_at_sigma, end_at_sigma, spacing):
        return (sigma_edits.extend_intermediate_sigmas(sigmas, steps, start_at_sigma, end_at_sigma, spacing),)


class ManualSigmas:
    CATEGORY = SIGMAS
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sigmas": ("STRING", {"default": "1, 0.5", "multiline": False})}}

    def get_sigmas(self, sigmas):
        return (sigma_edits.parse_sigmas(sigmas),)


class AddNoise:
    CATEGORY = "model/sampling/noise"
    FUNCTION = "add_noise"
    RETURN_TYPES = ("LATENT",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "noise": ("NOISE",), "sigmas": ("SIGMAS",),
                             "latent_image": ("LATENT",)}}

    def add_noise(self, model, noise, sigmas, latent_image):
        if len(sigmas) == 0:
            return (latent_image,)
        latent_format = model.latent_format
        noisy = sigma_edits.noise_latent(model_sampling_of(model), noise.generate_noise(latent_image),
                                         latent_image["samples"], sigmas, latent_format.process_in,
                                         latent_format.process_out)
        return (dict(latent_image, samples=noisy),)


NODE_CLASS_MAPPINGS = {
    "PolyexponentialScheduler": PolyexponentialScheduler,
    "LaplaceScheduler": LaplaceScheduler,
    "VPScheduler": VPScheduler,
    "BetaSamplingScheduler": BetaSamplingScheduler,
    "AlignYourStepsScheduler": AlignYourStepsScheduler,
    "GITSScheduler": GITSScheduler,
    "OptimalStepsScheduler": OptimalStepsScheduler,
    "SamplingPercentToSigma": SamplingPercentToSigma,
    "SetFirstSigma": SetFirstSigma,
    "ExtendIntermediateSigmas": ExtendIntermediateSigmas,
    "ManualSigmas": ManualSigmas,
    "AddNoise": AddNoise,
}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
