"""VAE nodes: images to latents and back, whole or tiled, and the inpainting encode.

Names, inputs (with defaults and ranges), outputs and categories are ComfyUI's. The work is
``ldm.vae.VaeHandle``'s; ``VAEEncodeForInpaint`` prepares pixels and the noise mask the way
ComfyUI does (masked pixels set to grey, mask grown in pixel space, sizes cropped to the VAE's
multiple).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from graph.context import current_context
from ldm.memory.admission import describe_tensor, tensor_bytes
from nodes.services import admit


def _temporal(verb: str) -> dict:
    """The video-only tiling inputs of VAEDecodeTiled (``verb`` "decode") / VAEEncodeTiled ("encode")."""
    return {
        "temporal_size": ("INT", {"default": 64, "min": 8, "max": 4096, "step": 4, "tooltip":
                                  f"Only used for video VAEs: Amount of frames to {verb} at a time.",
                                  "advanced": True}),
        "temporal_overlap": ("INT", {"default": 8, "min": 4, "max": 4096, "step": 4,
                                     "tooltip": "Only used for video VAEs: Amount of frames to overlap.",
                                     "advanced": True}),
    }


def using_vae(vae, inference_bytes: int = 0):
    """The engine's ``use_vae`` (the VAE on its device, room made for ``inference_bytes`` of
    activations); outside a running node (a script calling the node's method) nothing to prepare."""
    context = current_context()
    if context is None:
        return contextlib.nullcontext(vae)
    return context.services.engine.use_vae(vae, inference_bytes=inference_bytes)


def admit_decoded(node: str, vae, latents: torch.Tensor) -> None:
    """Refuse a decode whose images cannot fit in RAM: ``[B, h·r, w·r, 3]`` float32 on the CPU,
    held twice while the decoded pieces are joined into one batch."""
    r = vae.downscale_ratio
    shape = (latents.shape[0], latents.shape[-2] * r, latents.shape[-1] * r, 3)
    admit(2 * tensor_bytes(shape), f"{node}: decoding images of {describe_tensor(shape)} "
                                   f"(the pieces and the joined batch)")


def _spatial_overlap(tile_size: int, overlap: int) -> int:
    # ComfyUI caps the overlap at a quarter of the tile so tiles still advance.
    return tile_size // 4 if tile_size < overlap * 4 else overlap


class VAEDecode:
    DESCRIPTION = "Decodes latent images back into pixel space images."
    CATEGORY = "model/latent"
    FUNCTION = "decode"
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The decoded image.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT", {"tooltip": "The latent to be decoded."}),
                             "vae": ("VAE", {"tooltip": "The VAE model used for decoding the latent."})}}

    def decode(self, vae, samples):
        latents = samples["samples"]
        admit_decoded("VAEDecode", vae, latents)
        with using_vae(vae, vae.decode_memory_bytes((1, *latents.shape[1:]))):
            return (vae.decode(latents),)


class VAEEncode:
    CATEGORY = "model/latent"
    FUNCTION = "encode"
    RETURN_TYPES = ("LATENT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pixels": ("IMAGE",), "vae": ("VAE",)}}

    def encode(self, vae, pixels):
        with using_vae(vae, vae.encode_memory_bytes((1, *pixels.shape[1:]))):
            return ({"samples": vae.encode(pixels[:, :, :, :3])},)


class VAEDecodeTiled:
    CATEGORY = "model/latent"
    FUNCTION = "decode"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "vae": ("VAE",),
                             "tile_size": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32,
                                                   "advanced": True}),
                             "overlap": ("INT", {"default": 64, "min": 0, "max": 4096, "step": 32,
                                                 "advanced": True}),
                             **_temporal("decode")}}

    def decode(self, vae, samples, tile_size, overlap=64, temporal_size=64, temporal_overlap=8):
        # temporal_size / temporal_overlap only matter for video VAEs, which Weft has not yet.
        admit_decoded("VAEDecodeTiled", vae, samples["samples"])
        with using_vae(vae):
            return (vae.decode_tiled(samples["samples"], tile_size=tile_size,
                                     overlap=_spatial_overlap(tile_size, overlap)),)


class VAEEncodeTiled:
    CATEGORY = "model/latent"
    FUNCTION = "encode"
    RETURN_TYPES = ("LATENT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pixels": ("IMAGE",), "vae": ("VAE",),
                             "tile_size": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 64,
                                                   "advanced": True}),
                             "overlap": ("INT", {"default": 64, "min": 0, "max": 4096, "step": 32,
                                                 "advanced": True}),
                             **_temporal("encode")}}

    def encode(self, vae, pixels, tile_size, overlap, temporal_size=64, temporal_overlap=8):
        with using_vae(vae):
            latents = vae.encode_tiled(pixels[:, :, :, :3], tile_size=tile_size,
                                       overlap=_spatial_overlap(tile_size, overlap))
        return ({"samples": latents},)


def grow_mask(mask: torch.Tensor, grow_by: int) -> torch.Tensor:
    """Dilate a [B, 1, H, W] mask by a ``grow_by`` square (mask rounded first), clamped to 0..1.

    An even kernel with ``ceil((k - 1) / 2)`` padding yields one extra row and column at the end;
    the caller crops them, as ComfyUI does.
    """
    if grow_by == 0:
        return mask
    kernel = torch.ones((1, 1, grow_by, grow_by))
    padding = math.ceil((grow_by - 1) / 2)
    return torch.clamp(F.conv2d(mask.round(), kernel, padding=padding), 0, 1)


class VAEEncodeForInpaint:
    CATEGORY = "model/latent"
    FUNCTION = "encode"
    RETURN_TYPES = ("LATENT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pixels": ("IMAGE",), "vae": ("VAE",), "mask": ("MASK",),
                             "grow_mask_by": ("INT", {"default": 6, "min": 0, "max": 64, "step": 1})}}

    def encode(self, vae, pixels, mask, grow_mask_by=6):
        ratio = vae.downscale_ratio
        height, width = pixels.shape[1] // ratio * ratio, pixels.shape[2] // ratio * ratio
        # mask [B?, H', W'] -> [B, 1, H, W] at the image's size
        mask = F.interpolate(mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).float(),
                             size=(pixels.shape[1], pixels.shape[2]), mode="bilinear")
        pixels = pixels[:, :, :, :3].clone()
        if (pixels.shape[1], pixels.shape[2]) != (height, width):
            top, left = (pixels.shape[1] % ratio) // 2, (pixels.shape[2] % ratio) // 2
            pixels = pixels[:, top:top + height, left:left + width, :]
            mask = mask[:, :, top:top + height, left:left + width]
        grown = grow_mask(mask, grow_mask_by)
        keep = (1.0 - mask.round()).squeeze(1).unsqueeze(-1)  # [B, H, W, 1]
        pixels = (pixels - 0.5) * keep + 0.5  # masked pixels become neutral grey
        with using_vae(vae, vae.encode_memory_bytes((1, *pixels.shape[1:]))):
            latents = vae.encode(pixels)
        return ({"samples": latents, "noise_mask": grown[:, :, :height, :width].round()},)


NODE_CLASS_MAPPINGS = {
    "VAEDecode": VAEDecode,
    "VAEEncode": VAEEncode,
    "VAEDecodeTiled": VAEDecodeTiled,
    "VAEEncodeTiled": VAEEncodeTiled,
    "VAEEncodeForInpaint": VAEEncodeForInpaint,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "VAEDecode": "VAE Decode",
    "VAEEncode": "VAE Encode",
    "VAEDecodeTiled": "VAE Decode (Tiled)",
    "VAEEncodeTiled": "VAE Encode (Tiled)",
    "VAEEncodeForInpaint": "VAE Encode (for Inpainting)",
}
