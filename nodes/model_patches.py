"""Model patches: nodes that return a clone of a MODEL with changed sampling behaviour.

ComfyUI's ``ModelSamplingDiscrete``, ``ModelSamplingContinuousEDM``, ``ModelSamplingContinuousV``
(``comfy_extras/nodes_model_advanced.py``) and ``RescaleCFG``.
A clone shares the weights and carries the change in its ``hooks`` (see
docs/engine-contract.md), so the model a patch node received is never changed.
"""

from __future__ import annotations

from ldm.sampling.cfg_rescale import rescale_cfg_function
from ldm.sampling.continuous_sampling import (CONTINUOUS_EDM_SAMPLING_NAMES, PLAYGROUND_V2_5, continuous_edm_sampling,
                                              continuous_v_sampling)
from ldm.sampling.discrete_variants import DISCRETE_SAMPLING_NAMES, discrete_model_sampling


class ModelSamplingDiscrete:
    CATEGORY = "model/patch"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "sampling": (list(DISCRETE_SAMPLING_NAMES),),
                             "zsnr": ("BOOLEAN", {"default": False, "advanced": True})}}

    def patch(self, model, sampling, zsnr):
        patched = model.clone()
        patched.hooks.model_sampling = discrete_model_sampling(model.family, sampling, zsnr)
        return (patched,)


def _sigma_input(default: float) -> tuple:
    return ("FLOAT", {"default": default, "min": 0.0, "max": 1000.0, "step": 0.001, "round": False,
                      "advanced": True})


class ModelSamplingContinuousEDM:
    CATEGORY = "model/patch"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "sampling": (list(CONTINUOUS_EDM_SAMPLING_NAMES),),
                             "sigma_max": _sigma_input(120.0), "sigma_min": _sigma_input(0.002)}}

    def patch(self, model, sampling, sigma_max, sigma_min):
        patched = model.clone()
        patched.hooks.model_sampling = continuous_edm_sampling(sampling, sigma_min, sigma_max)
        if sampling == "edm_playground_v2.5":
            patched.latent_format = PLAYGROUND_V2_5
        return (patched,)


class ModelSamplingContinuousV:
    CATEGORY = "model/patch"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "sampling": (["v_prediction"],),
                             "sigma_max": _sigma_input(500.0), "sigma_min": _sigma_input(0.03)}}

    def patch(self, model, sampling, sigma_max, sigma_min):
        patched = model.clone()
        patched.hooks.model_sampling = continuous_v_sampling(sigma_min, sigma_max)
        return (patched,)


class RescaleCFG:
    CATEGORY = "model/patch"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "multiplier": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def patch(self, model, multiplier):
        patched = model.clone()
        patched.hooks.cfg_function = rescale_cfg_function(multiplier)
        return (patched,)


NODE_CLASS_MAPPINGS = {
    "ModelSamplingDiscrete": ModelSamplingDiscrete,
    "ModelSamplingContinuousEDM": ModelSamplingContinuousEDM,
    "ModelSamplingContinuousV": ModelSamplingContinuousV,
    "RescaleCFG": RescaleCFG,
}
