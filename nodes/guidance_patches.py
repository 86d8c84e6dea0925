"""Guidance patches: CFG variants as MODEL patches, and the guiders that need more than CFG.

ComfyUI's ``comfy_extras`` nodes of the same names (``nodes_perpneg``, ``nodes_apg``, ``nodes_cfg``,
``nodes_mahiro``, ``nodes_tcfg``, ``nodes_eps``, ``nodes_fresca``, ``nodes_differential_diffusion``,
and ``CFGOverride`` / ``DualModelGuider`` of ``nodes_custom_sampler``), with their current inputs.
Every patch returns a clone of the MODEL carrying the change in its ``hooks``; the algorithms
live in :mod:`ldm.sampling.guidance_variants`, :mod:`ldm.sampling.perp_neg` and
:mod:`ldm.sampling.dual_model`. Categories are ComfyUI's newest source's where one exists (``experimental``,
``model/sampling/guiders``), else the Oct 2025 copy's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ldm.sampling import guidance_variants as variants
from ldm.sampling.dual_model import DualModelGuider as DualModelSampling
from ldm.sampling.from_handle import guided_model, model_sampling_of
from ldm.sampling.guidance import CFGGuider, Conditioning, GuidedModel
from ldm.sampling.hooks import CFGOverride as CFGOverrideHook
from ldm.sampling.perp_neg import PerpNegGuider as PerpNegSampling, perp_neg_cfg_function
from nodes.sampling import cfg_input
from nodes.services import services

MODEL = ("MODEL",)
GUIDERS = "model/sampling/guiders"
#: ComfyUI's newest category of its experimental patches (the Oct 2025 copy said ``_for_testing``).
EXPERIMENTAL = "experimental"
#: ComfyUI's null conditioning: no text embedding, the model runs without cross-attention input.
NULL_CONDITIONING = [[None, {}]]


def _patched(model, **hooks: Any):
    """A clone of ``model`` with the given hook fields set."""
    patched = model.clone()
    for name, value in hooks.items():
        setattr(patched.hooks, name, value)
    return (patched,)


def _with_post_cfg(model, function):
    patched = model.clone()
    patched.hooks.post_cfg_functions.append(function)
    return (patched,)


def _with_pre_cfg(model, function):
    patched = model.clone()
    patched.hooks.pre_cfg_functions.append(function)
    return (patched,)


class PerpNeg:
    CATEGORY = EXPERIMENTAL
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    EXPERIMENTAL = True
    DEPRECATED = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL, "empty_conditioning": ("CONDITIONING",),
                             "neg_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01,
                                                     "advanced": True})}}

    def patch(self, model, empty_conditioning, neg_scale):
        return _patched(model, cfg_function=perp_neg_cfg_function(list(empty_conditioning), neg_scale))


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class PerpNegGuidance:
    """The GUIDER of PerpNegGuider (see :class:`ldm.sampling.perp_neg.PerpNegGuider`)."""

    model: Any
    positive: Conditioning
    negative: Conditioning
    empty: Conditioning
    cfg: float
    neg_scale: float

    def build(self, guided: GuidedModel) -> PerpNegSampling:
        return PerpNegSampling(guided, list(self.positive), list(self.negative), list(self.empty), self.cfg,
                               self.neg_scale)


class PerpNegGuider:
    CATEGORY = EXPERIMENTAL
    FUNCTION = "get_guider"
    RETURN_TYPES = ("GUIDER",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL, "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "empty_conditioning": ("CONDITIONING",), "cfg": cfg_input(),
                             "neg_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01,
                                                     "advanced": True})}}

    def get_guider(self, model, positive, negative, empty_conditioning, cfg, neg_scale):
        return (PerpNegGuidance(model, positive, negative, empty_conditioning, cfg, neg_scale),)


class APG:
    CATEGORY = "sampling/custom_sampling"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL,
            "eta": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01,
                              "tooltip": "Controls the scale of the parallel guidance vector. Default CFG behavior "
                                         "at a setting of 1."}),
            "norm_threshold": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 50.0, "step": 0.1,
                                         "tooltip": "Normalize guidance vector to this value, normalization disable "
                                                    "at a setting of 0."}),
            "momentum": ("FLOAT", {"default": 0.0, "min": -5.0, "max": 1.0, "step": 0.01,
                                   "tooltip": "Controls a running average of guidance during diffusion, disabled at "
                                              "a setting of 0."})}}

    def patch(self, model, eta, norm_threshold, momentum):
        return _with_pre_cfg(model, variants.AdaptiveProjectedGuidance(eta, norm_threshold, momentum))


class CFGNorm:
    CATEGORY = "advanced/guidance"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("patched_model",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL,
                             "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01})},
                "optional": {"pre_cfg": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "If true, rescale the combined noise BEFORE the sampler's CFG combine, without "
                               "clamping (can amplify). Matches the norm-scaled CFG used by models like Lens. "
                               "Default false keeps the original post-CFG x0-space attenuate-only behavior."})}}

    def patch(self, model, strength, pre_cfg=False):
        if pre_cfg:
            return _patched(model, cfg_function=variants.cfg_norm_pre(strength))
        return _with_post_cfg(model, variants.cfg_norm_post(strength))


class CFGOverride:
    CATEGORY = GUIDERS
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = ("Override cfg to a fixed value over a [start, end] percent (sigma) range. "
                   "With multiple overrides, the one nearest the sampler wins on overlap.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL,
                             "cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
                             "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}),
                             "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001})}}

    def patch(self, model, cfg, start_percent, end_percent):
        # The range is fixed in sigmas of the sampling the model has now, as ComfyUI does.
        sampling = model_sampling_of(model)
        override = CFGOverrideHook(cfg, sigma_low=sampling.percent_to_sigma(end_percent),
                                   sigma_high=sampling.percent_to_sigma(start_percent))
        patched = model.clone()
        patched.hooks.cfg_overrides.append(override)
        return (patched,)


class CFGZeroStar:
    CATEGORY = "advanced/guidance"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("patched_model",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL}}

    def patch(self, model):
        return _with_post_cfg(model, variants.cfg_zero_star)


class Mahiro:
    CATEGORY = "_for_testing"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("patched_model",)
    EXPERIMENTAL = True
    DESCRIPTION = ("Modify the guidance to scale more on the 'direction' of the positive prompt rather than the "
                   "difference between the negative prompt.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL}}

    def patch(self, model):
        return _with_post_cfg(model, variants.mahiro)


class TCFG:
    CATEGORY = "advanced/guidance"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("patched_model",)
    DESCRIPTION = ("TCFG – Tangential Damping CFG (2503.18137)\n\nRefine the uncond (negative) to align with the "
                   "cond (positive) for improving quality.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL}}

    def patch(self, model):
        return _with_pre_cfg(model, variants.tangential_damping_cfg)


class EpsilonScaling:
    CATEGORY = "model_patches/unet"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL,
                             "scaling_factor": ("FLOAT", {"default": 1.005, "min": 0.5, "max": 1.5, "step": 0.001,
                                                          "display": "number"})}}

    def patch(self, model, scaling_factor):
        return _with_post_cfg(model, variants.epsilon_scaling(scaling_factor))


class TemporalScoreRescaling:
    CATEGORY = "model_patches/unet"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("patched_model",)
    DESCRIPTION = ("[Post-CFG Function]\nTSR - Temporal Score Rescaling (2510.01184)\n\n"
                   "Rescaling the model's score or noise to steer the sampling diversity.\n")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL,
            "tsr_k": ("FLOAT", {"default": 0.95, "min": 0.01, "max": 100.0, "step": 0.001, "display": "number",
                                "tooltip": "Controls the rescaling strength.\nLower k produces more detailed results; "
                                           "higher k produces smoother results in image generation. Setting k = 1 "
                                           "disables rescaling."}),
            "tsr_sigma": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 100.0, "step": 0.001, "display": "number",
                                    "tooltip": "Controls how early rescaling takes effect.\nLarger values take "
                                               "effect earlier."})}}

    def patch(self, model, tsr_k, tsr_sigma):
        return _with_post_cfg(model, variants.temporal_score_rescaling(tsr_k, tsr_sigma))


class FreSca:
    CATEGORY = "_for_testing"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    EXPERIMENTAL = True
    DESCRIPTION = "Applies frequency-dependent scaling to the guidance"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL,
            "scale_low": ("FLOAT", {"default": 1.0, "min": 0, "max": 10, "step": 0.01,
                                    "tooltip": "Scaling factor for low-frequency components"}),
            "scale_high": ("FLOAT", {"default": 1.25, "min": 0, "max": 10, "step": 0.01,
                                     "tooltip": "Scaling factor for high-frequency components"}),
            "freq_cutoff": ("INT", {"default": 20, "min": 1, "max": 10000, "step": 1,
                                    "tooltip": "Number of frequency indices around center to consider as "
                                               "low-frequency"})}}

    def patch(self, model, scale_low, scale_high, freq_cutoff):
        return _with_pre_cfg(model, variants.fresca(scale_low, scale_high, freq_cutoff))


class DifferentialDiffusion:
    CATEGORY = EXPERIMENTAL
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL},
                "optional": {"strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.0001})}}

    def apply(self, model, strength=1.0):
        return _patched(model, denoise_mask_function=variants.differential_diffusion(strength))


@dataclass(frozen=True)
class EngineLentUNet:
    """A second model's UNet borrowed from the engine for each call: a GUIDER's run holds the
    engine's loan of its main model only."""

    engine: Any
    handle: Any

    def __call__(self, x, timesteps, **kwargs):
        with self.engine.use_unet(self.handle, latent_shape=tuple(x.shape)) as unet:
            return unet(x, timesteps, **kwargs)


@dataclass(frozen=True, eq=False)
class DualModelGuidance:
    """The GUIDER of DualModelGuider (see :class:`ldm.sampling.dual_model.DualModelGuider`)."""

    model: Any
    negative_model: Any
    positive: Conditioning
    negative: Conditioning
    cfg: float

    def build(self, guided: GuidedModel) -> DualModelSampling:
        negative = guided_model(self.negative_model, EngineLentUNet(services().engine, self.negative_model))
        # The negative model runs under the main model's hooks, as in ComfyUI; ControlNets on its
        # side are lent by the run's engine loan like the main model's.
        negative = dataclasses.replace(negative, hooks=guided.hooks, lend=guided.lend,
                                       diffusion_model=self.negative_model.unet)
        return DualModelSampling(guided, negative, list(self.positive), list(self.negative), self.cfg)


@dataclass(frozen=True, eq=False)
class SingleModelGuidance:
    """DualModelGuider without a negative model: ordinary CFG on the main model."""

    model: Any
    positive: Conditioning
    negative: Conditioning
    cfg: float

    def build(self, guided: GuidedModel) -> CFGGuider:
        return CFGGuider(guided, list(self.positive), list(self.negative), self.cfg)


class DualModelGuider:
    CATEGORY = GUIDERS
    FUNCTION = "get_guider"
    RETURN_TYPES = ("GUIDER",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL", {"tooltip": "Model used for the positive (conditional) pass."}),
                             "positive": ("CONDITIONING",),
                             "cfg": ("FLOAT", {"default": 4.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01})},
                "optional": {"model_negative": ("MODEL", {
                                 "tooltip": "Model used for the negative (unconditional) pass. Use the same model "
                                            "for ordinary CFG."}),
                             "negative": ("CONDITIONING", {
                                 "tooltip": "Negative conditioning run on the negative model. Leave unconnected "
                                            "for a text-free (image-only) unconditional pass."})}}

    def get_guider(self, model, positive, cfg, model_negative=None, negative=None):
        if negative is None:
            negative = NULL_CONDITIONING
        if model_negative is None:
            return (SingleModelGuidance(model, positive, negative, cfg),)
        return (DualModelGuidance(model, model_negative, positive, negative, cfg),)


NODE_CLASS_MAPPINGS = {
    "PerpNeg": PerpNeg,
    "PerpNegGuider": PerpNegGuider,
    "APG": APG,
    "CFGNorm": CFGNorm,
    "CFGOverride": CFGOverride,
    "CFGZeroStar": CFGZeroStar,
    "Mahiro": Mahiro,
    "TCFG": TCFG,
    "TemporalScoreRescaling": TemporalScoreRescaling,
    "Epsilon Scaling": EpsilonScaling,
    "FreSca": FreSca,
    "DifferentialDiffusion": DifferentialDiffusion,
    "DualModelGuider": DualModelGuider,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "PerpNeg": "Perp-Neg (DEPRECATED by Perp-Neg Guider)",
    "PerpNegGuider": "Perp-Neg Guider",
    "APG": "Adaptive Projected Guidance",
    "CFGOverride": "CFG Override",
    "Mahiro": "Mahiro is so cute that she deserves a better guidance function!! (。・ω・。)",
    "TCFG": "Tangential Damping CFG",
    "TemporalScoreRescaling": "TSR - Temporal Score Rescaling",
    "FreSca": "FreSca",
    "DifferentialDiffusion": "Differential Diffusion",
    "DualModelGuider": "Dual Model CFG Guider",
}
