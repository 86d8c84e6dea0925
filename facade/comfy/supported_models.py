"""``comfy.supported_models``: ComfyUI's per-family model configs, matched against Weft's families.

``isinstance(model.model.model_config, comfy.supported_models.SDXL)`` holds for a Weft SDXL MODEL:
each class below matches :class:`ldm.model_patching.ModelConfigView` by ``family`` —

=================  ==========================================
``SD15``           ``sd1``, ``sd1_inpaint``
``SD20``           ``sd2``, ``sd2_v``, ``sd2_inpaint``, ``sd_x4`` (ComfyUI's x4 config is an SD20)
``SDXL``           ``sdxl``
``SDXLRefiner``    ``sdxl_refiner``
``SD_X4Upscaler``  ``sd_x4``
=================  ==========================================

— and carries ComfyUI's ``unet_config`` / ``unet_extra_config`` / ``latent_format`` values, so
``matches`` and subclassing (Easy-Use's Kolors config subclasses ``SDXL``) work. Families Weft
does not load (unCLIP, SSD-1B, SVD, SD3, Flux, …) have classes that match no Weft model.
``models`` lists the classes; Weft's loader does not consult it (it detects families with
:mod:`ldm.loading.detect`), so replacing it changes nothing.
"""

from __future__ import annotations

import torch

from comfy import latent_formats, supported_models_base  # packs read comfy.supported_models.supported_models_base
from comfy._kinds import KindMeta
from comfy.model_base import ModelType
from comfy.supported_models_base import BASE
from ldm.loading.detect import detect_unet
from ldm.model_patching import ModelConfigView

__all__ = ["BASE", "SD15", "SD20", "SD21UnclipH", "SD21UnclipL", "SDXL", "SDXLRefiner", "SD_X4Upscaler", "models",
           "supported_models_base"]


def _families(*families: str):
    return staticmethod(lambda obj: isinstance(obj, ModelConfigView) and obj.family in families)


def _never():
    return staticmethod(lambda obj: False)


class SD15(BASE):
    __weft_is__ = _families("sd1", "sd1_inpaint")
    unet_config = {"context_dim": 768, "model_channels": 320, "use_linear_in_transformer": False,
                   "adm_in_channels": None, "use_temporal_attention": False}
    unet_extra_config = {"num_heads": 8, "num_head_channels": -1}
    latent_format = latent_formats.SD15
    memory_usage_factor = 1.0


class SD20(BASE):
    __weft_is__ = _families("sd2", "sd2_v", "sd2_inpaint", "sd_x4")
    unet_config = {"context_dim": 1024, "model_channels": 320, "use_linear_in_transformer": True,
                   "adm_in_channels": None, "use_temporal_attention": False}
    unet_extra_config = {"num_heads": -1, "num_head_channels": 64, "attn_precision": torch.float32}
    latent_format = latent_formats.SD15
    memory_usage_factor = 1.0

    def model_type(self, state_dict, prefix: str = "") -> ModelType:
        """v-prediction or eps by Weft's rule (:func:`ldm.loading.detect.detect_unet`)."""
        unet = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        return ModelType.V_PREDICTION if detect_unet(unet).prediction == "v" else ModelType.EPS


class SD21UnclipL(SD20):
    __weft_is__ = _never()
    unet_config = {**SD20.unet_config, "adm_in_channels": 1536}
    clip_vision_prefix = "embedder.model.visual."


class SD21UnclipH(SD20):
    __weft_is__ = _never()
    unet_config = {**SD20.unet_config, "adm_in_channels": 2048}
    clip_vision_prefix = "embedder.model.visual."


class SDXLRefiner(BASE):
    __weft_is__ = _families("sdxl_refiner")
    unet_config = {"model_channels": 384, "use_linear_in_transformer": True, "context_dim": 1280,
                   "adm_in_channels": 2560, "transformer_depth": [0, 0, 4, 4, 4, 4, 0, 0],
                   "use_temporal_attention": False}
    latent_format = latent_formats.SDXL
    memory_usage_factor = 1.0


class SDXL(BASE):
    __weft_is__ = _families("sdxl")
    unet_config = {"model_channels": 320, "use_linear_in_transformer": True,
                   "transformer_depth": [0, 0, 2, 2, 10, 10], "context_dim": 2048, "adm_in_channels": 2816,
                   "use_temporal_attention": False}
    latent_format = latent_formats.SDXL
    memory_usage_factor = 0.8


class SD_X4Upscaler(SD20):  # noqa: N801 (ComfyUI's name)
    __weft_is__ = _families("sd_x4")
    unet_config = {"context_dim": 1024, "model_channels": 256, "in_channels": 7, "use_linear_in_transformer": True,
                   "adm_in_channels": None, "use_temporal_attention": False}
    unet_extra_config = {"disable_self_attentions": [True, True, True, False], "num_classes": 1000,
                         "num_heads": 8, "num_head_channels": -1}
    latent_format = latent_formats.SD_X4
    sampling_settings = {"linear_start": 0.0001, "linear_end": 0.02}


def _foreign(name: str, base: type = BASE) -> type:
    """A config class of a family Weft does not load: it matches no Weft model."""
    return KindMeta(name, (base,), {"__weft_is__": _never(), "__module__": __name__,
                                    "__doc__": f"ComfyUI's {name} config; Weft does not load this family."})


SSD1B = _foreign("SSD1B", SDXL)
Segmind_Vega = _foreign("Segmind_Vega", SDXL)
KOALA_700M = _foreign("KOALA_700M", SDXL)
KOALA_1B = _foreign("KOALA_1B", SDXL)
SD15_instructpix2pix = _foreign("SD15_instructpix2pix", SD15)
SDXL_instructpix2pix = _foreign("SDXL_instructpix2pix", SDXL)
SVD_img2vid = _foreign("SVD_img2vid")
Stable_Zero123 = _foreign("Stable_Zero123")
Stable_Cascade_C = _foreign("Stable_Cascade_C")
Stable_Cascade_B = _foreign("Stable_Cascade_B", Stable_Cascade_C)
SD3 = _foreign("SD3")
StableAudio = _foreign("StableAudio")
AuraFlow = _foreign("AuraFlow")
PixArtAlpha = _foreign("PixArtAlpha")
PixArtSigma = _foreign("PixArtSigma", PixArtAlpha)
HunyuanDiT = _foreign("HunyuanDiT")
HunyuanDiT1 = _foreign("HunyuanDiT1", HunyuanDiT)
Flux = _foreign("Flux")
FluxInpaint = _foreign("FluxInpaint", Flux)
FluxSchnell = _foreign("FluxSchnell", Flux)
GenmoMochi = _foreign("GenmoMochi")
LTXV = _foreign("LTXV")
HunyuanVideo = _foreign("HunyuanVideo")
CosmosT2V = _foreign("CosmosT2V")
Lumina2 = _foreign("Lumina2")
WAN21_T2V = _foreign("WAN21_T2V")
WAN21_I2V = _foreign("WAN21_I2V", WAN21_T2V)
HiDream = _foreign("HiDream")
Chroma = _foreign("Chroma")
ACEStep = _foreign("ACEStep")
Omnigen2 = _foreign("Omnigen2")
QwenImage = _foreign("QwenImage")

#: ComfyUI's detection order (for the classes above); Weft's loader does not read it.
models = [SD15_instructpix2pix, SD15, SD20, SD21UnclipL, SD21UnclipH, SDXL_instructpix2pix, SDXLRefiner, SDXL,
          SSD1B, KOALA_700M, KOALA_1B, Segmind_Vega, SD_X4Upscaler, Stable_Zero123, Stable_Cascade_C,
          Stable_Cascade_B, SD3, StableAudio, AuraFlow, PixArtAlpha, PixArtSigma, HunyuanDiT, HunyuanDiT1,
          FluxInpaint, Flux, FluxSchnell, GenmoMochi, LTXV, HunyuanVideo, CosmosT2V, Lumina2, WAN21_T2V,
          WAN21_I2V, HiDream, Chroma, ACEStep, Omnigen2, QwenImage, SVD_img2vid]
