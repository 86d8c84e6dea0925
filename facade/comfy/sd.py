"""``comfy.sd``: loading checkpoints, LoRAs, text encoders and VAEs the way packs call it.

The objects are Weft's own: MODEL is :class:`ldm.model.ModelHandle`, CLIP
:class:`ldm.text.handle.ClipHandle`, VAE :class:`ldm.vae.VaeHandle`; ``isinstance(x, comfy.sd.VAE)``
and ``comfy.sd.CLIP`` match them. Files are read through Weft's safe loader.
"""

from __future__ import annotations

import enum

from _weft_binding import host
from comfy._kinds import KindMeta
from ldm import model as weft_model
from ldm.loading.checkpoint import load_state_dict
from ldm.lora import patches as lora
from ldm.text.handle import ClipHandle, build_clip_from_files
from ldm.vae import VaeHandle
from ldm.vision.loading import load_unclip_checkpoint
from ldm.vision.style_model import load_style_model  # noqa: F401 - ComfyUI's comfy.sd.load_style_model


def _compute():
    return host().services.engine.compute


def _embedding_dirs(embedding_directory) -> tuple:
    if embedding_directory is None:
        return tuple(host().services.folders.models.get("embeddings", ()))
    return (embedding_directory,) if isinstance(embedding_directory, str) else tuple(embedding_directory)


class CLIPType(enum.Enum):
    """ComfyUI's text-encoder kinds (those Weft loads: the Stable Diffusion ones)."""

    STABLE_DIFFUSION = 1
    STABLE_CASCADE = 2
    SD3 = 3
    STABLE_AUDIO = 4


class VAE(metaclass=KindMeta):
    """Weft's VAE; ``VAE(sd=state_dict)`` builds one from a KL-autoencoder state dict."""

    __weft_is__ = staticmethod(lambda obj: isinstance(obj, VaeHandle))

    def __new__(cls, sd=None, device=None, config=None, dtype=None, metadata=None):
        if sd is None:
            raise TypeError("VAE(sd=...) needs a state dict in Weft")
        return weft_model.build_vae(sd, compute=_compute())


class CLIP(metaclass=KindMeta):
    """Weft's CLIP (text encoders + tokenizer)."""

    __weft_is__ = staticmethod(lambda obj: isinstance(obj, ClipHandle))

    def __new__(cls, *args, **kwargs):
        raise TypeError("construct a CLIP with comfy.sd.load_clip(...) in Weft")


def load_checkpoint_guess_config(ckpt_path, output_vae=True, output_clip=True, output_clipvision=False,
                                 embedding_directory=None, output_model=True, model_options=None,
                                 te_model_options=None):
    """``(MODEL, CLIP | None, VAE, CLIP_VISION | None)`` from a single-file checkpoint; the vision
    tower (unCLIP checkpoints) only with ``output_clipvision``."""
    if output_clipvision:
        model, clip, vae, vision = load_unclip_checkpoint(ckpt_path, compute=_compute(),
                                                          embedding_dirs=_embedding_dirs(embedding_directory))
    else:
        vision = None
        model, clip, vae = weft_model.load_checkpoint(ckpt_path, compute=_compute(), with_clip=output_clip,
                                                      embedding_dirs=_embedding_dirs(embedding_directory))
    return (model if output_model else None, clip if output_clip else None, vae if output_vae else None, vision)


def load_diffusion_model(unet_path, model_options=None):
    dtype = (model_options or {}).get("dtype")
    names = {v: k for k, v in weft_model.WEIGHT_DTYPES.items() if v is not None}
    return weft_model.load_unet(unet_path, weight_dtype=names.get(dtype, "default"), compute=_compute())


load_unet = load_diffusion_model


def load_lora_for_models(model, clip, lora_sd, strength_model, strength_clip):
    return lora.load_lora_for_models(model, clip, lora_sd, strength_model, strength_clip)


def load_clip(ckpt_paths, embedding_directory=None, clip_type=CLIPType.STABLE_DIFFUSION, model_options=None):
    kind = clip_type.name.lower() if isinstance(clip_type, CLIPType) else str(clip_type)
    state_dicts = [load_state_dict(path)[0] for path in ckpt_paths]
    return build_clip_from_files(state_dicts, kind, _embedding_dirs(embedding_directory))


def load_vae(vae_path):
    return weft_model.load_vae(vae_path, compute=_compute())
