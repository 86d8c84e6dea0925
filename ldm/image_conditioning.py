"""Images turned into extra model inputs: the inpainting models' masked image, the x4 upscaler's
low-resolution image (ComfyUI's InpaintModelConditioning and SD_4XUpscale_Conditioning).

Both only prepare tensors; the VAE encode happens in the caller and the tensors reach the
network through conditioning extras (``concat_latent_image`` / ``concat_mask``,
``concat_image`` / ``noise_augmentation``, read by :mod:`ldm.sampling.model_conds`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.imaging import operations as imaging

#: The x4 upscaler's latent is a quarter of the output size (its VAE downsamples 4×).
X4_LATENT_RATIO = 4


def masked_inpaint_pixels(pixels: torch.Tensor, mask: torch.Tensor,
                          multiple: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked pixels [B, H', W', 3], mask [B, 1, H', W'])`` for a 9-channel inpainting model.

    The mask (``[B?, h, w]``, 1 = repaint) is resized bilinearly to the image; both are centre-
    cropped to a multiple of ``multiple`` (the VAE's downscale ratio); masked pixels become
    neutral grey (0.5) where the rounded mask is 1. The returned mask is the resized one, not
    rounded (ComfyUI passes it on as the noise mask and concat mask as it is).
    """
    height, width = pixels.shape[1], pixels.shape[2]
    mask = F.interpolate(mask.reshape((-1, 1) + tuple(mask.shape[-2:])).float(), size=(height, width),
                         mode="bilinear")
    pixels = pixels[..., :3].clone()
    cut_h, cut_w = height // multiple * multiple, width // multiple * multiple
    if (cut_h, cut_w) != (height, width):
        top, left = (height % multiple) // 2, (width % multiple) // 2
        pixels = pixels[:, top:top + cut_h, left:left + cut_w, :]
        mask = mask[:, :, top:top + cut_h, left:left + cut_w]
    keep = (1.0 - mask.round()).squeeze(1).unsqueeze(-1)  # [B, H', W', 1]
    return (pixels - 0.5) * keep + 0.5, mask


def crop_to_multiple(pixels: torch.Tensor, multiple: int = 8) -> torch.Tensor:
    """IMAGE ``[B, H, W, C]`` centre-cropped to a multiple of ``multiple`` on both sides (the
    VAE's downscale ratio), as InstructPixToPixConditioning crops before encoding."""
    height, width = pixels.shape[1], pixels.shape[2]
    cut_h, cut_w = height // multiple * multiple, width // multiple * multiple
    if (cut_h, cut_w) == (height, width):
        return pixels
    top, left = (height % multiple) // 2, (width % multiple) // 2
    return pixels[:, top:top + cut_h, left:left + cut_w, :]


def x4_upscale_inputs(images: torch.Tensor, scale_ratio: float) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``(low-res image [B, 3, h, w] in -1…1, latent shape [B, 4, h, w])`` for the x4 upscaler.

    The output is ``scale_ratio`` × the image size; its latent is a quarter of that, and the
    image is resized (bilinear, centre crop to the aspect) to the latent's size.
    """
    width = max(1, round(images.shape[2] * scale_ratio))
    height = max(1, round(images.shape[1] * scale_ratio))
    latent_w, latent_h = max(1, width // X4_LATENT_RATIO), max(1, height // X4_LATENT_RATIO)
    signed = imaging.as_channel_first(images[..., :3]) * 2.0 - 1.0
    low_res = imaging.resample(signed, latent_w, latent_h, "bilinear", "center")
    return low_res, (images.shape[0], 4, latent_h, latent_w)
