"""Image colour nodes: histograms, tone curves, YUV channels, palette quantisation, noise,
colour transfer, colour-space conversion, SDR to HDR expansion.

Names, inputs, outputs and categories are ComfyUI's (``comfy_extras/nodes_curve.py``
ImageHistogram and CurveEditor, ``nodes_morphology.py`` ImageRGBToYUV / ImageYUVToRGB,
``nodes_post_processing.py`` ImageQuantize and ColorTransfer, ``nodes_images.py`` ImageAddNoise,
ImageColorSpace and ImageSDRToHDR). ColorTransfer's ``source_stats`` and ImageSDRToHDR's
``algorithm`` are DynamicCombos in ComfyUI: their option inputs arrive as the dotted keys
``"source_stats.target_index"`` and ``"algorithm.target_luminance"``. A HISTOGRAM is a
list of 256 ints; a CURVE is the curve editor's ``{"points": [[x, y], …], "interpolation": …}``
value, handed on as an :class:`ldm.imaging.curves.Curve`. The algorithms are
:mod:`ldm.imaging.color`, :mod:`ldm.imaging.color_transfer`, :mod:`ldm.imaging.color_spaces` and
:mod:`ldm.imaging.sdr_to_hdr` (whose curve is Weft's own: its pixels do not match ComfyUI's bit
for bit).
"""

from __future__ import annotations

import torch

from ldm.imaging import color as imaging_color, color_spaces, color_transfer, sdr_to_hdr
from ldm.imaging.curves import IDENTITY, curve_from_value


class ImageHistogram:
    CATEGORY = "utils"
    RETURN_TYPES = ("HISTOGRAM",) * 5
    RETURN_NAMES = ("rgb", "luminance", "red", "green", "blue")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def execute(self, image):
        counts = imaging_color.histograms(image)
        return tuple(counts[name] for name in self.RETURN_NAMES)


class CurveEditor:
    CATEGORY = "utils"
    RETURN_TYPES = ("CURVE",)
    RETURN_NAMES = ("curve",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"curve": ("CURVE", {"default": IDENTITY})},
                "optional": {"histogram": ("HISTOGRAM",)}}

    def execute(self, curve, histogram=None):
        result = (curve_from_value(curve),)
        if histogram is None:
            return result
        # the editor draws the histogram behind the curve
        return {"ui": {"histogram": list(histogram)}, "result": result}


class ImageRGBToYUV:
    CATEGORY = "image/color"
    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE")
    RETURN_NAMES = ("Y", "U", "V")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def execute(self, image):
        ycbcr = imaging_color.rgb_to_ycbcr(image)
        # each component as a grey image of the input's shape
        return tuple(ycbcr[..., index:index + 1].expand_as(image) for index in range(3))


class ImageYUVToRGB:
    CATEGORY = "image/color"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"Y": ("IMAGE",), "U": ("IMAGE",), "V": ("IMAGE",)}}

    def execute(self, Y, U, V):
        ycbcr = torch.cat([plane.mean(dim=-1, keepdim=True) for plane in (Y, U, V)], dim=-1)
        return (imaging_color.ycbcr_to_rgb(ycbcr),)


class ImageQuantize:
    CATEGORY = "image/filters"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "colors": ("INT", {"default": 256, "min": 1, "max": 256, "step": 1}),
                             "dither": (list(imaging_color.DITHER_METHODS),)}}

    def execute(self, image, colors, dither):
        return (imaging_color.quantize(image, colors, dither),)


class ImageAddNoise:
    CATEGORY = "image/filters"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE",),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                             "tooltip": "The random seed used for creating the noise."}),
            "strength": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def execute(self, image, seed, strength):
        return (imaging_color.add_noise(image, seed, strength),)


class ColorTransfer:
    CATEGORY = "image/filters"
    DESCRIPTION = "Match the colors of one image to another using various algorithms."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
                    "image_target": ("IMAGE", {"tooltip": "Image(s) to apply the color transform to."}),
                    "image_ref": ("IMAGE", {"tooltip": "Reference image(s) to match colors to."}),
                    "method": (list(color_transfer.METHODS),),
                    "source_stats": (list(color_transfer.SOURCE_STATS), {"tooltip": (
                        "per_frame: each frame matched to image_ref individually. uniform: pool stats across all "
                        "source frames as baseline, match to image_ref. target_frame: use one chosen frame as the "
                        "baseline for the transform to image_ref, applied uniformly to all frames (preserves "
                        "relative differences)")}),
                    "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})},
                "optional": {
                    # the DynamicCombo option of source_stats = target_frame, as the prompt carries it
                    "source_stats.target_index": ("INT", {
                        "default": 0, "min": 0, "max": 10000,
                        "tooltip": "Frame index used as the source baseline for computing the transform to "
                                   "image_ref"})}}

    def execute(self, image_target, image_ref, method, source_stats, strength=1.0, **option):
        target_index = option.get("source_stats.target_index", 0)
        return (color_transfer.transfer(image_target, image_ref, method, source_stats, target_index, strength),)


class ImageColorSpace:
    CATEGORY = "image/color"
    DESCRIPTION = ("Convert sRGB, linear Rec.709, HDR (Rec.2020 HLG), HDR PQ (Rec.2020 PQ), HDR LogC3, linear "
                   "ACEScg, and HDR ACEScct. LogC3 uses the EI 800 curve with Rec.709 primaries and codes clamped "
                   "to [0, 1]; ACEScg is scene-linear AP1 with D60 white and ACEScct is its log encoding, both "
                   "adapted to D65 by the Bradford transform. Linear 1.0 and ACEScg 1.0 use the same 203-nit "
                   "reference white as sRGB; HLG uses a 1000-nit reference display. Linear, ACEScg, and ACEScct "
                   "outputs and linear-to-HDR conversions preserve extended values without tone mapping. SDR "
                   "output and PQ-to-HLG conversion tone-map excess luminance across the batch and compress "
                   "out-of-gamut colors. HLG and PQ outputs clip negative channels. Straight alpha is not "
                   "color-transformed.")
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        spaces = list(color_spaces.SPACES)
        return {"required": {
            "image": ("IMAGE",),
            "source": (spaces, {"default": "sRGB", "tooltip": "Color space of the input pixels."}),
            "destination": (spaces, {"default": "sRGB", "tooltip": (
                "Color space of the output pixels. Set the save node to this same color space. Convert LogC3 or "
                "ACEScct to linear ACEScg for ACEScg EXR, or to linear for Rec.709 EXR. Convert to sRGB/HDR/HDR PQ "
                "before saving video.")})}}

    def execute(self, image, source, destination):
        return (color_spaces.convert(image, source, destination),)


class ImageSDRToHDR:
    CATEGORY = "image/color"
    DESCRIPTION = ("Expand SDR sRGB images into Rec.2020 HLG HDR, keeping their look and mapping their brightness "
                   "into a wider range. Save the result with the HDR color space selected. Straight alpha is "
                   "copied unchanged.")
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
                    "image": ("IMAGE", {"tooltip": "The SDR image(s) in sRGB to expand into HDR."}),
                    "algorithm": (list(sdr_to_hdr.ALGORITHMS), {"tooltip": "HDR expansion algorithm."})},
                "optional": {
                    # the DynamicCombo option of algorithm = lottes, as the prompt carries it
                    "algorithm.target_luminance": ("FLOAT", {
                        "default": 650.0, "min": 0.0, "max": 10000.0, "step": 1.0,
                        "tooltip": "Peak-white target in nits. 0 keeps the calibrated rendering. Dark images are "
                                   "not normalized to this peak."})}}

    def execute(self, image, algorithm, **option):
        return (sdr_to_hdr.sdr_to_hlg(image, option.get("algorithm.target_luminance", 650.0)),)


_NODES = (ImageHistogram, CurveEditor, ImageRGBToYUV, ImageYUVToRGB, ImageQuantize, ImageAddNoise, ColorTransfer,
          ImageColorSpace, ImageSDRToHDR)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ImageHistogram": "Image Histogram", "CurveEditor": "Curve Editor",
    "ImageRGBToYUV": "Image RGB to YUV", "ImageYUVToRGB": "Image YUV to RGB",
    "ImageAddNoise": "Add Noise to Image", "ImageColorSpace": "Convert Image Color Space",
    "ImageSDRToHDR": "Convert SDR to HDR", "ImageQuantize": "Quantize Image", "ColorTransfer": "Transfer Color",
}
