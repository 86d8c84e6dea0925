"""Conditioning for models that take an image beside the text: 9-channel inpainting models and the
SD x4 upscaler (ComfyUI's ``InpaintModelConditioning`` and ``SD_4XUpscale_Conditioning``).

Both return the conditioning lists with the image attached to every entry, and the LATENT to
sample. The tensors are prepared by :mod:`ldm.image_conditioning`; the family's conditioning
builder (:mod:`ldm.sampling.model_conds`) hands them to the network.
"""

from __future__ import annotations

import torch

from ldm.image_conditioning import masked_inpaint_pixels, x4_upscale_inputs
from ldm.text.conditioning import with_values


class InpaintModelConditioning:
    CATEGORY = "model/conditioning"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "vae": ("VAE",),
            "pixels": ("IMAGE",), "mask": ("MASK",),
            "noise_mask": ("BOOLEAN", {
                "default": True,
                "tooltip": "Add a noise mask to the latent so sampling will only happen within the mask. Might "
                           "improve results or completely break things depending on the model."})}}

    def encode(self, positive, negative, pixels, vae, mask, noise_mask=True):
        masked, mask = masked_inpaint_pixels(pixels, mask, vae.downscale_ratio)
        concat_latent = vae.encode(masked)
        latent = {"samples": vae.encode(pixels[..., :3])}
        if noise_mask:
            latent["noise_mask"] = mask
        values = {"concat_latent_image": concat_latent, "concat_mask": mask}
        return with_values(positive, values), with_values(negative, values), latent


class SD_4XUpscale_Conditioning:
    CATEGORY = "conditioning/upscale_diffusion"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
            "scale_ratio": ("FLOAT", {"default": 4.0, "min": 0.0, "max": 10.0, "step": 0.01}),
            "noise_augmentation": ("FLOAT", {"default": 0.25, "min": 0.0, "max": 1.0, "step": 0.001})}}

    def encode(self, images, positive, negative, scale_ratio, noise_augmentation):
        low_res, latent_shape = x4_upscale_inputs(images, scale_ratio)
        values = {"concat_image": low_res, "noise_augmentation": noise_augmentation}
        latent = {"samples": torch.zeros(latent_shape, dtype=torch.float32)}
        return with_values(positive, values), with_values(negative, values), latent


NODE_CLASS_MAPPINGS = {
    "InpaintModelConditioning": InpaintModelConditioning,
    "SD_4XUpscale_Conditioning": SD_4XUpscale_Conditioning,
}
