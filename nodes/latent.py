"""Latent nodes: empty latents, resizing, compositing, blending, batches and transforms.

Names, inputs, outputs and categories are ComfyUI's (current, Dec 2026: ``nodes.py`` and
``comfy_extras/nodes_mask.py``), so API prompts that use them run unchanged. A LATENT is
``{"samples": [B, C, h, w], "noise_mask"?: mask, "batch_index"?: [int]}``; every node returns a
new dict and leaves the one it received alone. Positions and sizes are in pixels (8 per latent
pixel), as in ComfyUI.
"""

from __future__ import annotations

import torch

from ldm.imaging import operations as imaging
from nodes.services import admit_tensor

MAX_RESOLUTION = 16384
LATENT_SCALE = 8  # pixels per latent pixel for the 4-channel SD latents these nodes make
LATENT_UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
CROP_METHODS = ["disabled", "center"]


def _pixels(default: int, minimum: int = 0, step: int = 8) -> tuple:
    return ("INT", {"default": default, "min": minimum, "max": MAX_RESOLUTION, "step": step})


def _with(latent: dict, **changes) -> dict:
    out = dict(latent)
    out.update(changes)
    return out


class EmptyLatentImage:
    CATEGORY = "model/latent"
    DESCRIPTION = "Create a new batch of empty latent images to be denoised via sampling."
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The empty latent image batch.",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "width": ("INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                              "tooltip": "The width of the latent images in pixels."}),
            "height": ("INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                               "tooltip": "The height of the latent images in pixels."}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096,
                                   "tooltip": "The number of latent images in the batch."})}}

    def generate(self, width, height, batch_size=1):
        shape = (batch_size, 4, height // LATENT_SCALE, width // LATENT_SCALE)
        admit_tensor("EmptyLatentImage: a latent", shape)
        # The ratio it was made for: sampling resizes it for a model whose latent is finer (ComfyUI's key).
        return ({"samples": torch.zeros(shape, dtype=torch.float32), "downscale_ratio_spacial": LATENT_SCALE},)


class LatentUpscale:
    CATEGORY = "model/latent"
    upscale_methods = LATENT_UPSCALE_METHODS
    crop_methods = CROP_METHODS
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "upscale_method": (LATENT_UPSCALE_METHODS,),
                             "width": _pixels(512), "height": _pixels(512), "crop": (CROP_METHODS,)}}

    def upscale(self, samples, upscale_method, width, height, crop):
        if width == 0 and height == 0:
            return (samples,)
        latent = samples["samples"]
        # A side of 0 keeps the aspect; ComfyUI never goes below 64 pixels (8 latent pixels).
        width, height = imaging.fit_size(width, height, latent.shape[-1], latent.shape[-2], minimum=64)
        admit_tensor("LatentUpscale: a latent", (*latent.shape[:-2], height // LATENT_SCALE, width // LATENT_SCALE),
                     latent.dtype, latent.device)
        resized = imaging.resample(latent, width // LATENT_SCALE, height // LATENT_SCALE, upscale_method, crop)
        return (_with(samples, samples=resized),)


class LatentUpscaleBy:
    CATEGORY = "model/latent"
    upscale_methods = LATENT_UPSCALE_METHODS
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "upscale_method": (LATENT_UPSCALE_METHODS,),
                             "scale_by": ("FLOAT", {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01})}}

    def upscale(self, samples, upscale_method, scale_by):
        latent = samples["samples"]
        width = max(1, round(latent.shape[-1] * scale_by))
        height = max(1, round(latent.shape[-2] * scale_by))
        admit_tensor("LatentUpscaleBy: a latent", (*latent.shape[:-2], height, width), latent.dtype, latent.device)
        return (_with(samples, samples=imaging.resample(latent, width, height, upscale_method)),)


class LatentComposite:
    CATEGORY = "model/latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples_to": ("LATENT",), "samples_from": ("LATENT",),
                             "x": _pixels(0), "y": _pixels(0), "feather": _pixels(0)}}

    def composite(self, samples_to, samples_from, x, y, composite_method="normal", feather=0):
        pasted = imaging.composite_feathered(samples_to["samples"], samples_from["samples"],
                                             x // LATENT_SCALE, y // LATENT_SCALE, feather // LATENT_SCALE)
        return (_with(samples_to, samples=pasted),)


class LatentCompositeMasked:
    CATEGORY = "model/latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"destination": ("LATENT",), "source": ("LATENT",),
                             "x": _pixels(0), "y": _pixels(0),
                             "resize_source": ("BOOLEAN", {"default": False})},
                "optional": {"mask": ("MASK",)}}

    def composite(self, destination, source, x, y, resize_source, mask=None):
        pasted = imaging.composite(destination["samples"], source["samples"], x, y, mask,
                                   LATENT_SCALE, resize_source)
        return (_with(destination, samples=pasted),)


class LatentBlend:
    CATEGORY = "experimental"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "blend"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples1": ("LATENT",), "samples2": ("LATENT",),
                             "blend_factor": ("FLOAT", {"default": 0.5, "min": 0, "max": 1, "step": 0.01})}}

    def blend(self, samples1, samples2, blend_factor, blend_mode="normal"):
        if blend_mode != "normal":
            raise ValueError(f"Unsupported blend mode: {blend_mode}")
        first, second = samples1["samples"], samples2["samples"]
        if first.shape[-2:] != second.shape[-2:]:
            second = imaging.resample(second, first.shape[-1], first.shape[-2], "bicubic", "center")
        second = imaging.repeat_to_batch(second, first.shape[0])
        # ComfyUI weights the *first* input by blend_factor here (ImageBlend does the opposite).
        return (_with(samples1, samples=first * blend_factor + second * (1 - blend_factor)),)


def _batch_fields(samples: dict, latents, noise_mask, batch_index) -> dict:
    out = _with(samples, samples=latents, batch_index=batch_index)
    if noise_mask is not None:
        out["noise_mask"] = noise_mask
    if batch_index is None:
        out.pop("batch_index")
    return out


class LatentFromBatch:
    CATEGORY = "model/latent/batch"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "frombatch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",),
                             "batch_index": ("INT", {"default": 0, "min": -MAX_RESOLUTION, "max": MAX_RESOLUTION}),
                             "length": ("INT", {"default": 1, "min": 1, "max": 64})}}

    def frombatch(self, samples, batch_index, length):
        if batch_index < 0:  # counted from the end of the batch (-1: the last latent)
            batch_index += samples["samples"].shape[0]
        taken = imaging.take_from_batch(samples["samples"], samples.get("noise_mask"),
                                        samples.get("batch_index"), batch_index, length)
        return (_batch_fields(samples, *taken),)


class RepeatLatentBatch:
    CATEGORY = "model/latent/batch"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "repeat"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",),
                             "amount": ("INT", {"default": 1, "min": 1, "max": 64})}}

    def repeat(self, samples, amount):
        latent = samples["samples"]
        admit_tensor("RepeatLatentBatch: a latent", (latent.shape[0] * amount, *latent.shape[1:]), latent.dtype,
                     latent.device)
        repeated = imaging.repeat_batch(samples["samples"], samples.get("noise_mask"),
                                        samples.get("batch_index"), amount)
        return (_batch_fields(samples, *repeated),)


class LatentCrop:
    CATEGORY = "model/latent/transform"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "width": _pixels(512, 64), "height": _pixels(512, 64),
                             "x": _pixels(0), "y": _pixels(0)}}

    def crop(self, samples, width, height, x, y):
        latent = samples["samples"]
        # The crop may not start later than 8 latent pixels (64 pixels) before the far edge.
        left = max(0, min(x // LATENT_SCALE, latent.shape[-1] - 8))
        top = max(0, min(y // LATENT_SCALE, latent.shape[-2] - 8))
        cropped = latent[..., top:top + height // LATENT_SCALE, left:left + width // LATENT_SCALE]
        return (_with(samples, samples=cropped),)


class LatentFlip:
    CATEGORY = "model/latent/transform"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "flip"
    METHODS = {"x-axis: vertically": -2, "y-axis: horizontally": -1}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "flip_method": (list(cls.METHODS),)}}

    def flip(self, samples, flip_method):
        return (_with(samples, samples=torch.flip(samples["samples"], dims=[self.METHODS[flip_method]])),)


class LatentRotate:
    CATEGORY = "model/latent/transform"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "rotate"
    QUARTER_TURNS = {"none": 0, "90 degrees": 1, "180 degrees": 2, "270 degrees": 3}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "rotation": (list(cls.QUARTER_TURNS),)}}

    def rotate(self, samples, rotation):
        # dims (w, h): clockwise quarter turns, as ComfyUI rotates
        turned = torch.rot90(samples["samples"], k=self.QUARTER_TURNS[rotation], dims=[3, 2])
        return (_with(samples, samples=turned),)


class SetLatentNoiseMask:
    CATEGORY = "model/latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "set_mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "mask": ("MASK",)}}

    def set_mask(self, samples, mask):
        return (_with(samples, noise_mask=mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1]))),)


_NODES = (EmptyLatentImage, LatentUpscale, LatentUpscaleBy, LatentComposite, LatentCompositeMasked,
          LatentBlend, LatentFromBatch, RepeatLatentBatch, LatentCrop, LatentFlip, LatentRotate,
          SetLatentNoiseMask)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "EmptyLatentImage": "Empty Latent Image", "LatentUpscale": "Upscale Latent",
    "LatentUpscaleBy": "Upscale Latent By", "LatentComposite": "Latent Composite",
    "LatentCompositeMasked": "Latent Composite Masked", "LatentBlend": "Latent Blend",
    "LatentFromBatch": "Get Latent From Batch",
    "RepeatLatentBatch": "Repeat Latent Batch", "LatentCrop": "Crop Latent", "LatentFlip": "Flip Latent",
    "LatentRotate": "Rotate Latent", "SetLatentNoiseMask": "Set Latent Noise Mask",
}
