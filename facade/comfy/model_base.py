"""``comfy.model_base``: the model classes packs test with ``isinstance``, over Weft's MODEL view.

``ModelPatcher.model`` in Weft is :class:`ldm.model_patching.DiffusionModelView`; these classes
match it by family (SD1/SD2 are ComfyUI's plain ``BaseModel``; SDXL, the refiner, the x4
upscaler and SD 2.1 unCLIP have their own classes). ComfyUI's classes of the families Weft does
not load exist for packs that name them (AnimateDiff-Evolved imports ``SVD_img2vid``) and match
nothing.
``ModelType`` is ComfyUI's prediction enum. Helpers: ``Timestep`` (sinusoidal embedding module),
``convert_tensor``, ``sdxl_pooled`` (without unCLIP); ``model_sampling`` and
``CLIPEmbeddingNoiseAugmentation`` raise :class:`_weft_absent.NotInWeftError`.
"""

from __future__ import annotations

import torch
from torch import nn

from _weft_absent import MODEL_SAMPLING_CLASSES, UNCLIP, absent_class, absent_function
from comfy._kinds import kind
from ldm.model_patching import DiffusionModelView, PredictionType
from ldm.networks.unet import timestep_embedding

ModelType = PredictionType


def _family_in(*families: str):
    return lambda obj: isinstance(obj, DiffusionModelView) and obj.family in families


BaseModel = kind("BaseModel", lambda obj: isinstance(obj, DiffusionModelView),
                 doc="Every Weft diffusion model (``ModelPatcher.model``).")
# ComfyUI's methods, read off the class by packs (``model_function: BaseModel.apply_model``) or
# called unbound on ``model.model``: the view's own.
for _method in ("apply_model", "get_dtype", "is_adm", "process_latent_in", "process_latent_out", "memory_required"):
    setattr(BaseModel, _method, getattr(DiffusionModelView, _method))
del _method

SDXL = kind("SDXL", _family_in("sdxl"), BaseModel)
SDXLRefiner = kind("SDXLRefiner", _family_in("sdxl_refiner"), BaseModel)
SD_X4Upscaler = kind("SD_X4Upscaler", _family_in("sd_x4"), BaseModel)


def _never(name: str, base: type = BaseModel) -> type:
    """A class of a family Weft does not load: no object matches it."""
    return kind(name, lambda obj: False, base)


SD21UNCLIP = kind("SD21UNCLIP", _family_in("sd2_unclip_l", "sd2_unclip_h"), BaseModel)
IP2P = _never("IP2P", object)
SDXL_instructpix2pix = _never("SDXL_instructpix2pix")
SD15_instructpix2pix = _never("SD15_instructpix2pix")
SVD_img2vid = _never("SVD_img2vid")
SV3D_u = _never("SV3D_u", SVD_img2vid)
SV3D_p = _never("SV3D_p", SVD_img2vid)
Stable_Zero123 = _never("Stable_Zero123")
Lotus = _never("Lotus")
StableCascade_C = _never("StableCascade_C")
StableCascade_B = _never("StableCascade_B")
SD3 = _never("SD3")
AuraFlow = _never("AuraFlow")
StableAudio1 = _never("StableAudio1")
HunyuanDiT = _never("HunyuanDiT")
PixArt = _never("PixArt")
Flux = _never("Flux")
Chroma = _never("Chroma", Flux)
ChromaRadiance = _never("ChromaRadiance", Chroma)
GenmoMochi = _never("GenmoMochi")
LTXV = _never("LTXV")
HunyuanVideo = _never("HunyuanVideo")
HunyuanVideoI2V = _never("HunyuanVideoI2V", HunyuanVideo)
HunyuanVideoSkyreelsI2V = _never("HunyuanVideoSkyreelsI2V", HunyuanVideo)
CosmosVideo = _never("CosmosVideo")
CosmosPredict2 = _never("CosmosPredict2")
Lumina2 = _never("Lumina2")
WAN21 = _never("WAN21")
WAN21_Vace = _never("WAN21_Vace", WAN21)
WAN21_Camera = _never("WAN21_Camera", WAN21)
WAN21_HuMo = _never("WAN21_HuMo", WAN21)
WAN22_Animate = _never("WAN22_Animate", WAN21)
WAN22_S2V = _never("WAN22_S2V", WAN21)
WAN22 = _never("WAN22", WAN21)
Hunyuan3Dv2 = _never("Hunyuan3Dv2")
Hunyuan3Dv2_1 = _never("Hunyuan3Dv2_1")
HiDream = _never("HiDream")
ACEStep = _never("ACEStep")
Omnigen2 = _never("Omnigen2")
QwenImage = _never("QwenImage")
HunyuanImage21 = _never("HunyuanImage21")
HunyuanImage21Refiner = _never("HunyuanImage21Refiner", HunyuanImage21)


class Timestep(nn.Module):
    """Sinusoidal embedding ``[N, dim]`` of timesteps ``[N]`` (Weft's, cos first)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return timestep_embedding(t, self.dim)


def convert_tensor(extra, dtype, device):
    """``extra`` moved to ``device``; floating-point tensors also cast to ``dtype``; non-tensors unchanged."""
    if not isinstance(extra, torch.Tensor):
        return extra
    if extra.dtype in (torch.int, torch.long):
        return extra.to(device)
    return extra.to(device=device, dtype=dtype)


def sdxl_pooled(args: dict, noise_augmentor=None):
    """The pooled text vector SDXL's ADM input starts from (``args["pooled_output"]``)."""
    if "unclip_conditioning" in args:
        raise UNCLIP.error(f"{__name__}.sdxl_pooled with unclip_conditioning")
    return args["pooled_output"]


CLIPEmbeddingNoiseAugmentation = absent_class(UNCLIP, __name__, "CLIPEmbeddingNoiseAugmentation", (nn.Module,))
model_sampling = absent_function(MODEL_SAMPLING_CLASSES, __name__, "model_sampling")
