"""Model patches: nodes that return a clone of a MODEL with changed sampling behaviour.

ComfyUI's ``ModelSamplingDiscrete`` (``comfy_extras/nodes_model_advanced.py``) and ``RescaleCFG``.
A clone shares the weights and carries the change in its ``hooks`` (see
docs/engine-contract.md), so the model a patch node received is never changed.
"""

from __future__ import annotations

from ldm.sampling.cfg_rescale import rescale_cfg_function
from ldm.sampling.discrete_variants import DISCRETE_SAMPLING_NAMES, discrete_model_sampling


class ModelSamplingDiscrete:
    CATEGORY = "advanced/model"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "sampling": (list(DISCRETE_SAMPLING_NAMES),),
                             "zsnr": ("BOOLEAN", {"default": False})}}

    def patch(self, model, sampling, zsnr):
        patched = model.clone()
        patched.hooks.model_sampling = discrete_model_sampling(model.family, sampling, zsnr)
        return (patched,)


class RescaleCFG:
    CATEGORY = "advanced/model"
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
    "RescaleCFG": RescaleCFG,
}
