"""Custom sampling: sampling split into NOISE, GUIDER, SAMPLER and SIGMAS nodes.

ComfyUI's ``comfy_extras/nodes_custom_sampler.py`` names, inputs, outputs and categories. The
values are Weft objects from :mod:`ldm.sampling.custom` (SIGMAS is a 1-D float tensor, as in
ComfyUI); the sampling itself runs through :mod:`nodes.sampling`'s shared run.
"""

from __future__ import annotations

from ldm.sampling import custom, schedulers, sigma_ops
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.samplers import SAMPLER_NAMES
from ldm.sampling.schedulers import SCHEDULER_NAMES
from nodes.sampling import (cfg_input, sampling_run, seed_input, step_callback, steps_input, to_intermediate,
                            with_model_channels)

SIGMA_LIMITS = {"min": 0.0, "max": 5000.0, "step": 0.01, "round": False}
SD_SIGMA_MAX = 14.614642
SD_SIGMA_MIN = 0.0291675
DENOISE = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})


def _run(model, guidance, sampler, sigmas, noise, latent_image):
    """Sample with ``guidance`` (a GUIDER) → ``(output, denoised_output)`` LATENT dicts."""
    latent = with_model_channels(latent_image, model)
    callback = step_callback(model)
    with sampling_run(model, latent["samples"].shape) as guided:
        outputs = custom.sample_custom(guidance.build(guided), sampler, sigmas, noise.generate_noise(latent),
                                       latent, noise.seed, callback, model.device)
    return tuple(to_intermediate(out) for out in outputs)


class SamplerCustom:
    CATEGORY = "model/sampling/custom"
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("output", "denoised_output")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "add_noise": ("BOOLEAN", {"default": True, "advanced": True}),
                             "noise_seed": seed_input(), "cfg": cfg_input(),
                             "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "sampler": ("SAMPLER",), "sigmas": ("SIGMAS",), "latent_image": ("LATENT",)}}

    def sample(self, model, add_noise, noise_seed, cfg, positive, negative, sampler, sigmas, latent_image):
        # Without start noise the step noise of ancestral samplers is still seeded by noise_seed.
        noise = custom.RandomNoise(noise_seed) if add_noise else custom.DisabledNoise(noise_seed)
        guidance = custom.CFGGuidance(model, positive, negative, cfg)
        return _run(model, guidance, sampler, sigmas, noise, latent_image)


class SamplerCustomAdvanced:
    CATEGORY = "model/sampling/custom"
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("output", "denoised_output")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"noise": ("NOISE",), "guider": ("GUIDER",), "sampler": ("SAMPLER",),
                             "sigmas": ("SIGMAS",), "latent_image": ("LATENT",)}}

    def sample(self, noise, guider, sampler, sigmas, latent_image):
        return _run(guider.model, guider, sampler, sigmas, noise, latent_image)


class KSamplerSelect:
    CATEGORY = "model/sampling/samplers"
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sampler_name": (list(SAMPLER_NAMES),)}}

    def get_sampler(self, sampler_name):
        return (custom.SamplerChoice(sampler_name),)


class BasicScheduler:
    CATEGORY = "model/sampling/schedulers"
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scheduler": (list(SCHEDULER_NAMES),),
                             "steps": steps_input(), "denoise": DENOISE}}

    def get_sigmas(self, model, scheduler, steps, denoise):
        return (sigma_ops.scheduled_sigmas(model_sampling_of(model), scheduler, steps, denoise),)


class KarrasScheduler:
    CATEGORY = "model/sampling/schedulers"
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": steps_input(),
                             "sigma_max": ("FLOAT", {"default": SD_SIGMA_MAX, **SIGMA_LIMITS, "advanced": True}),
                             "sigma_min": ("FLOAT", {"default": SD_SIGMA_MIN, **SIGMA_LIMITS, "advanced": True}),
                             "rho": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.01,
                                               "round": False, "advanced": True})}}

    def get_sigmas(self, steps, sigma_max, sigma_min, rho):
        return (schedulers.karras_sigmas(steps, sigma_min, sigma_max, rho),)


class ExponentialScheduler:
    CATEGORY = "model/sampling/schedulers"
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": steps_input(),
                             "sigma_max": ("FLOAT", {"default": SD_SIGMA_MAX, **SIGMA_LIMITS, "advanced": True}),
                             "sigma_min": ("FLOAT", {"default": SD_SIGMA_MIN, **SIGMA_LIMITS, "advanced": True})}}

    def get_sigmas(self, steps, sigma_max, sigma_min):
        return (schedulers.exponential_sigmas(steps, sigma_min, sigma_max),)


class SDTurboScheduler:
    CATEGORY = "model/sampling/schedulers"
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "steps": ("INT", {"default": 1, "min": 1, "max": 10}),
                             "denoise": ("FLOAT", {"default": 1.0, "min": 0, "max": 1.0, "step": 0.01})}}

    def get_sigmas(self, model, steps, denoise):
        return (sigma_ops.sd_turbo_sigmas(model_sampling_of(model), steps, denoise),)


class SplitSigmas:
    CATEGORY = "model/sampling/sigmas"
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS", "SIGMAS")
    RETURN_NAMES = ("high_sigmas", "low_sigmas")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sigmas": ("SIGMAS",), "step": ("INT", {"default": 0, "min": 0, "max": 10000})}}

    def get_sigmas(self, sigmas, step):
        return sigma_ops.split_sigmas(sigmas, step)


class SplitSigmasDenoise:
    CATEGORY = "model/sampling/sigmas"
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS", "SIGMAS")
    RETURN_NAMES = ("high_sigmas", "low_sigmas")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sigmas": ("SIGMAS",), "denoise": DENOISE}}

    def get_sigmas(self, sigmas, denoise):
        return sigma_ops.split_sigmas_denoise(sigmas, denoise)


class FlipSigmas:
    CATEGORY = "model/sampling/sigmas"
    FUNCTION = "get_sigmas"
    RETURN_TYPES = ("SIGMAS",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sigmas": ("SIGMAS",)}}

    def get_sigmas(self, sigmas):
        return (sigma_ops.flip_sigmas(sigmas),)


class CFGGuider:
    CATEGORY = "model/sampling/guiders"
    FUNCTION = "get_guider"
    RETURN_TYPES = ("GUIDER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "cfg": cfg_input()}}

    def get_guider(self, model, positive, negative, cfg):
        return (custom.CFGGuidance(model, positive, negative, cfg),)


class BasicGuider:
    CATEGORY = "model/sampling/guiders"
    FUNCTION = "get_guider"
    RETURN_TYPES = ("GUIDER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "conditioning": ("CONDITIONING",)}}

    def get_guider(self, model, conditioning):
        return (custom.CFGGuidance(model, conditioning),)


class DualCFGGuider:
    CATEGORY = "model/sampling/guiders"
    FUNCTION = "get_guider"
    RETURN_TYPES = ("GUIDER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "cond1": ("CONDITIONING",), "cond2": ("CONDITIONING",),
                             "negative": ("CONDITIONING",), "cfg_conds": cfg_input(),
                             "cfg_cond2_negative": cfg_input(), "style": (["regular", "nested"],)}}

    def get_guider(self, model, cond1, cond2, negative, cfg_conds, cfg_cond2_negative, style="regular"):
        return (custom.DualCFGGuidance(model, cond1, cond2, negative, cfg_conds, cfg_cond2_negative,
                                       nested=(style == "nested")),)


class DisableNoise:
    CATEGORY = "model/sampling/noise"
    FUNCTION = "get_noise"
    RETURN_TYPES = ("NOISE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def get_noise(self):
        return (custom.DisabledNoise(),)


class RandomNoise(DisableNoise):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"noise_seed": seed_input()}}

    def get_noise(self, noise_seed):
        return (custom.RandomNoise(noise_seed),)

NODE_CLASS_MAPPINGS = {
    "SamplerCustom": SamplerCustom,
    "SamplerCustomAdvanced": SamplerCustomAdvanced,
    "KSamplerSelect": KSamplerSelect,
    "BasicScheduler": BasicScheduler,
    "KarrasScheduler": KarrasScheduler,
    "ExponentialScheduler": ExponentialScheduler,
    "SDTurboScheduler": SDTurboScheduler,
    "SplitSigmas": SplitSigmas,
    "SplitSigmasDenoise": SplitSigmasDenoise,
    "FlipSigmas": FlipSigmas,
    "CFGGuider": CFGGuider,
    "BasicGuider": BasicGuider,
    "DualCFGGuider": DualCFGGuider,
    "RandomNoise": RandomNoise,
    "DisableNoise": DisableNoise,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "CFGGuider": "CFG Guider",
    "BasicGuider": "Basic Guider",
    "DualCFGGuider": "Dual CFG Guider",
}
