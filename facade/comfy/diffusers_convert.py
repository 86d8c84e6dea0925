"""``comfy.diffusers_convert``: diffusers-layout weights under CompVis names, where Weft has the table.

``convert_vae_state_dict`` is Weft's VAE renaming (:func:`ldm.loading.vae_keys.diffusers_vae_to_ldm`) with
the mid-block attention matrices shaped as 1×1 convolutions, as CompVis' VAE stores them. The
text-encoder conversions raise ``NotImplementedError``: Weft reads text encoders in their own
layouts (:mod:`ldm.text.layouts`). A whole diffusers model folder loads with
``comfy.diffusers_load.load_diffusers``, ComfyUI's home for it.
"""

from __future__ import annotations

import torch

from ldm.loading.vae_keys import diffusers_vae_to_ldm

__all__ = ["convert_text_enc_state_dict", "convert_text_enc_state_dict_v20", "convert_vae_state_dict",
           "reshape_weight_for_sd"]

_MID_ATTENTION = tuple(f"mid.attn_1.{name}.weight" for name in ("q", "k", "v", "proj_out"))


def reshape_weight_for_sd(w: torch.Tensor, conv3d: bool = False) -> torch.Tensor:
    """A linear ``[out, in]`` weight as a 1×1 (×1) convolution's."""
    return w.reshape(*w.shape, 1, 1, 1) if conv3d else w.reshape(*w.shape, 1, 1)


def convert_vae_state_dict(vae_state_dict: dict) -> dict:
    """A diffusers ``AutoencoderKL`` state dict under CompVis names (other keys unchanged)."""
    conv3d = any(k.endswith(".conv.weight") and v.ndim == 5 for k, v in vae_state_dict.items())
    out = diffusers_vae_to_ldm(vae_state_dict)
    for key, value in out.items():
        if key.endswith(_MID_ATTENTION) and value.ndim == 2:
            out[key] = reshape_weight_for_sd(value, conv3d=conv3d)
    return out


def convert_text_enc_state_dict(text_enc_dict: dict) -> dict:
    raise NotImplementedError("text-encoder conversion: Weft reads CLIP weights in their Hugging Face and "
                              "OpenCLIP layouts directly (comfy.sd.load_clip)")


def convert_text_enc_state_dict_v20(text_enc_dict: dict, prefix: str = "") -> dict:
    raise NotImplementedError("text-encoder conversion: Weft reads CLIP weights in their Hugging Face and "
                              "OpenCLIP layouts directly (comfy.sd.load_clip)")
