"""Control-image preprocessors that need no model download.

``Canny`` is ComfyUI's (``comfy_extras/nodes_canny.py``: same name, inputs and category). The
others are Weft's own, named so they collide neither with ComfyUI's core nor with the
``comfyui_controlnet_aux`` pack: line thresholds for scribble / lineart ControlNets, a blurred
low-resolution copy for tile ControlNets, and the inpainting ControlNet's control image. The
algorithms are :mod:`ldm.control.preprocess`'s; images go in and out as IMAGE [B, H, W, C].
"""

from __future__ import annotations

from ldm.control import preprocess
from ldm.imaging.operations import as_channel_first, as_channel_last

CATEGORY = "image/preprocessors"


class Canny:
    CATEGORY = CATEGORY
    FUNCTION = "detect_edge"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        threshold = {"min": 0.01, "max": 0.99, "step": 0.01}
        return {"required": {"image": ("IMAGE",),
                             "low_threshold": ("FLOAT", {"default": 0.4, **threshold}),
                             "high_threshold": ("FLOAT", {"default": 0.8, **threshold})}}

    def detect_edge(self, image, low_threshold, high_threshold):
        edges = preprocess.canny(as_channel_first(image), low_threshold, high_threshold)
        return (as_channel_last(edges.expand(-1, 3, -1, -1)).to(image.device),)


class WeftLineThreshold:
    CATEGORY = CATEGORY
    DESCRIPTION = ("White lines on black for scribble and lineart ControlNets: the pixels of a drawing "
                   "darker (or brighter) than the threshold, optionally thickened.")
    FUNCTION = "threshold"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE",),
            "threshold": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": "Brightness that separates lines from background."}),
            "lines": (["dark on light", "light on dark"], {"tooltip": "How the lines look in the input."}),
            "thickness": ("INT", {"default": 0, "min": 0, "max": 32,
                                  "tooltip": "Pixels to grow each line by (scribble models like thick strokes)."}),
        }}

    def threshold(self, image, threshold, lines, thickness):
        out = preprocess.line_threshold(as_channel_first(image), threshold, lines == "dark on light", thickness)
        return (as_channel_last(out).to(image.device),)


class WeftTileResample:
    CATEGORY = CATEGORY
    DESCRIPTION = "A tile ControlNet's control image: the picture at lower resolution and blurred, same size."
    FUNCTION = "resample"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE",),
            "downscale": ("FLOAT", {"default": 2.0, "min": 1.0, "max": 16.0, "step": 0.5,
                                    "tooltip": "Factor the detail is reduced by (1 = none)."}),
            "blur_sigma": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 16.0, "step": 0.1,
                                     "tooltip": "Gaussian blur in pixels after resampling (0 = none)."}),
        }}

    def resample(self, image, downscale, blur_sigma):
        out = preprocess.tile_image(as_channel_first(image), downscale, blur_sigma)
        return (as_channel_last(out).to(image.device),)


class WeftInpaintControlImage:
    CATEGORY = CATEGORY
    DESCRIPTION = ("The control image an inpainting ControlNet reads: the picture with the masked pixels "
                   "set to -1 (outside the usual 0..1, as those models were trained).")
    FUNCTION = "mark"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "mask": ("MASK",)}}

    def mark(self, image, mask):
        out = preprocess.inpaint_control_image(as_channel_first(image), mask.to(image.device))
        return (as_channel_last(out),)


NODE_CLASS_MAPPINGS = {
    "Canny": Canny,
    "WeftLineThreshold": WeftLineThreshold,
    "WeftTileResample": WeftTileResample,
    "WeftInpaintControlImage": WeftInpaintControlImage,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "WeftLineThreshold": "Line Threshold (scribble / lineart)",
    "WeftTileResample": "Tile Resample (blur / downscale)",
    "WeftInpaintControlImage": "Inpaint Control Image",
}
