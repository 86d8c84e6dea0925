"""``comfy.model_base``: the model classes packs test with ``isinstance``, over Weft's MODEL view.

``ModelPatcher.model`` in Weft is :class:`ldm.model_patching.DiffusionModelView`; these classes
match it by family (SD1/SD2 are ComfyUI's plain ``BaseModel``; SDXL, the refiner and the x4
upscaler have their own classes). ``ModelType`` is ComfyUI's prediction enum.
"""

from __future__ import annotations

from comfy._kinds import kind
from ldm.model_patching import DiffusionModelView, PredictionType

ModelType = PredictionType


def _family_in(*families: str):
    return lambda obj: isinstance(obj, DiffusionModelView) and obj.family in families


BaseModel = kind("BaseModel", lambda obj: isinstance(obj, DiffusionModelView),
                 doc="Every Weft diffusion model (``ModelPatcher.model``).")
SDXL = kind("SDXL", _family_in("sdxl"), BaseModel)
SDXLRefiner = kind("SDXLRefiner", _family_in("sdxl_refiner"), BaseModel)
SD_X4Upscaler = kind("SD_X4Upscaler", _family_in("sd_x4"), BaseModel)
# Families ComfyUI has classes for and Weft does not load: never matched.
SD21UNCLIP = kind("SD21UNCLIP", lambda obj: False, BaseModel)
SDXL_instructpix2pix = kind("SDXL_instructpix2pix", lambda obj: False, BaseModel)
SD15_instructpix2pix = kind("SD15_instructpix2pix", lambda obj: False, BaseModel)
StableCascade_C = kind("StableCascade_C", lambda obj: False, BaseModel)
SD3 = kind("SD3", lambda obj: False, BaseModel)
Flux = kind("Flux", lambda obj: False, BaseModel)
