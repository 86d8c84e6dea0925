"""Mask nodes: solid masks, inversion, cropping, combining, feathering, growing, thresholds and
conversions between images and masks.

Names, inputs, outputs and categories are ComfyUI's (current, Dec 2026: ``comfy_extras/nodes_mask.py``).
A MASK is ``[B, H, W]`` in 0..1; inputs of shape ``[H, W]`` are taken as a batch of one.
"""

from __future__ import annotations

import torch

from ldm.imaging import operations as imaging

MAX_RESOLUTION = 16384
IMAGE_CHANNELS = ["red", "green", "blue", "alpha"]


def _int(default: int, minimum: int = 0, maximum: int = MAX_RESOLUTION) -> tuple:
    return ("INT", {"default": default, "min": minimum, "max": maximum, "step": 1})


class _MaskNode:
    CATEGORY = "image/mask"
    RETURN_TYPES = ("MASK",)


class SolidMask(_MaskNode):
    FUNCTION = "solid"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
                             "width": _int(512, 1), "height": _int(512, 1)}}

    def solid(self, value, width, height):
        return (torch.full((1, height, width), value, dtype=torch.float32),)


class InvertMask(_MaskNode):
    FUNCTION = "invert"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",)}}

    def invert(self, mask):
        return (1.0 - mask,)


class CropMask(_MaskNode):
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",), "x": _int(0), "y": _int(0),
                             "width": _int(512, 1), "height": _int(512, 1)}}

    def crop(self, mask, x, y, width, height):
        return (imaging.as_mask_batch(mask)[:, y:y + height, x:x + width],)


class MaskComposite(_MaskNode):
    FUNCTION = "combine"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"destination": ("MASK",), "source": ("MASK",), "x": _int(0), "y": _int(0),
                             "operation": (list(imaging.MASK_OPERATIONS),)}}

    def combine(self, destination, source, x, y, operation):
        return (imaging.combine_masks(destination, source, x, y, operation),)


class FeatherMask(_MaskNode):
    FUNCTION = "feather"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",), "left": _int(0), "top": _int(0),
                             "right": _int(0), "bottom": _int(0)}}

    def feather(self, mask, left, top, right, bottom):
        return (imaging.feather_edges(mask, left, top, right, bottom),)


class GrowMask(_MaskNode):
    FUNCTION = "expand_mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",), "expand": _int(0, -MAX_RESOLUTION),
                             "tapered_corners": ("BOOLEAN", {"default": True, "advanced": True})}}

    def expand_mask(self, mask, expand, tapered_corners):
        return (imaging.grow(mask, expand, tapered_corners),)


class ThresholdMask(_MaskNode):
    FUNCTION = "image_to_mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",),
                             "value": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def image_to_mask(self, mask, value):
        return ((mask > value).float(),)


class ImageToMask(_MaskNode):
    FUNCTION = "image_to_mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "channel": (IMAGE_CHANNELS,)}}

    def image_to_mask(self, image, channel):
        index = IMAGE_CHANNELS.index(channel)
        if index >= image.shape[-1]:  # "alpha" of an RGB image: fully opaque
            return (torch.ones(image.shape[:-1], dtype=image.dtype, device=image.device),)
        return (image[..., index],)


class MaskToImage:
    CATEGORY = "image/mask"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "mask_to_image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",)}}

    def mask_to_image(self, mask):
        # [B, H, W] -> [B, H, W, 3], one grey value in all three channels
        return (imaging.as_mask_batch(mask).unsqueeze(-1).expand(-1, -1, -1, 3),)


class ImageColorToMask(_MaskNode):
    FUNCTION = "image_to_mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1,
                                               "display": "number"})}}

    def image_to_mask(self, image, color):
        return (imaging.color_to_mask(image, color),)


_NODES = (SolidMask, InvertMask, CropMask, MaskComposite, FeatherMask, GrowMask, ThresholdMask,
          ImageToMask, MaskToImage, ImageColorToMask)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SolidMask": "Create Solid Mask",
    "InvertMask": "Invert Mask",
    "CropMask": "Crop Mask",
    "MaskComposite": "Combine Masks",
    "FeatherMask": "Feather Mask",
    "GrowMask": "Grow Mask",
    "ThresholdMask": "Threshold Mask",
    "ImageToMask": "Convert Image to Mask",
    "MaskToImage": "Convert Mask to Image",
    "ImageColorToMask": "Convert Image Color to Mask",
}
