"""Saving and re-loading images: animated PNG and WebP, 8/16-bit PNG, loading from the output folder.

Names, inputs, outputs and categories are ComfyUI's (``comfy_extras/nodes_images.py``
SaveAnimatedPNG / SaveAnimatedWEBP / SaveImageAdvanced, ``nodes.py`` LoadImageOutput). Files are
numbered as ComfyUI numbers them (``<prefix>_00001_.png``; SaveImageAdvanced without the last
underscore, ``<prefix>_00001.png``) and written atomically; the encoders are
:mod:`ldm.imaging.animation_io`, :mod:`ldm.imaging.image_io` and :mod:`ldm.imaging.png16`.

SaveImageAdvanced offers the ``png`` format only: ComfyUI's ``exr`` and ``avif`` encoders are
PyAV's (OpenEXR, SVT-AV1 in 8/10-bit YUV with BT.2020 signalling), which Weft does not depend on.
Its ``format`` is a DynamicCombo: the chosen option's inputs arrive as ``"format.bit_depth"``
and ``"format.input_color_space"``.
"""

from __future__ import annotations

from graph.context import check_interrupted
from graph.output_files import resolve_save_target, write_numbered
from graph.png_metadata import add_text_chunks
from ldm.imaging import animation_io, image_io, png16
from nodes.image import LoadImage, metadata_chunks
from nodes.services import services

WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}


def _save_animation(images, filename_prefix: str, extension: str, encode) -> dict:
    """Writes one animated file into the output folder; the node's result and ``ui``."""
    found = services()
    target = resolve_save_target(found.folders.output, filename_prefix, images.shape[2], images.shape[1])
    name, _ = write_numbered(target, target.counter, 0, extension, encode())
    ui = {"images": [{"filename": name, "subfolder": target.subfolder, "type": "output"}]}
    if len(images) > 1:
        ui["animated"] = (True,)
    return {"ui": ui, "result": (images,)}


def _metadata(prompt, extra_pnginfo) -> dict[str, str]:
    return {} if services().options.disable_metadata else metadata_chunks(prompt, extra_pnginfo)


class _SaveAnimated:
    """One animated file of the images at ``fps``; ``EXTRA_INPUTS`` are the encoder's settings."""

    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    EXTRA_INPUTS: dict

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",),
                             "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                             "fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}),
                             **cls.EXTRA_INPUTS},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}


class SaveAnimatedPNG(_SaveAnimated):
    EXTRA_INPUTS = {"compress_level": ("INT", {"default": 4, "min": 0, "max": 9, "advanced": True})}

    def save_images(self, images, fps, compress_level, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        metadata = _metadata(prompt, extra_pnginfo)
        return _save_animation(images, filename_prefix, "png", lambda: animation_io.animated_png_bytes(
            images, fps, compress_level, metadata))


class SaveAnimatedWEBP(_SaveAnimated):
    EXTRA_INPUTS = {"lossless": ("BOOLEAN", {"default": True}),
                    "quality": ("INT", {"default": 80, "min": 0, "max": 100}),
                    "method": (list(WEBP_METHODS),)}

    def save_images(self, images, fps, filename_prefix, lossless, quality, method, prompt=None, extra_pnginfo=None):
        metadata = _metadata(prompt, extra_pnginfo)
        return _save_animation(images, filename_prefix, "webp", lambda: animation_io.animated_webp_bytes(
            images, fps, lossless, quality, WEBP_METHODS[method], metadata))


class SaveImageAdvanced:
    CATEGORY = "image"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "execute"
    OUTPUT_NODE = True
    FORMATS = ("png",)
    BIT_DEPTHS = ("8-bit", "16-bit")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
                    "images": ("IMAGE", {"tooltip": "The images to save."}),
                    "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": (
                        "The prefix for the file to save. May include formatting tokens such as "
                        "%date:yyyy-MM-dd% or %Empty Latent Image.width%.")}),
                    "format": (list(cls.FORMATS), {"tooltip": "The file format in which to save the image."})},
                "optional": {
                    "format.bit_depth": (list(cls.BIT_DEPTHS), {"default": "8-bit", "advanced": True}),
                    "format.input_color_space": (["sRGB"], {"default": "sRGB", "advanced": True})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def execute(self, images, filename_prefix, format, prompt=None, extra_pnginfo=None, **option):
        bit_depth = option.get("format.bit_depth", "8-bit")
        if format not in self.FORMATS or bit_depth not in self.BIT_DEPTHS:
            raise ValueError(f"cannot save {format}/{bit_depth}: Weft writes png in 8 or 16 bits")
        chunks = _metadata(prompt, extra_pnginfo)
        target = resolve_save_target(services().folders.output, filename_prefix, images.shape[2], images.shape[1])
        results, counter = [], target.counter
        for batch_number, image in enumerate(images):
            check_interrupted()
            data = png16.png16_bytes(image, 4) if bit_depth == "16-bit" else image_io.png_bytes(
                image if image.ndim == 3 else image.unsqueeze(-1))
            if chunks:
                data = add_text_chunks(data, chunks)
            name, counter = write_numbered(target, counter, batch_number, "png", data, trailer="")
            results.append({"filename": name, "subfolder": target.subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results}, "result": (images,)}


class LoadImageOutput(LoadImage):
    """LoadImage over the output folder: the editor lists it through a remote combo and sends
    names annotated ``"name.png [output]"``; an unannotated name is read from input, as in ComfyUI."""
    DESCRIPTION = ("Load an image from the output folder. When the refresh button is clicked, the node will "
                   "update the image list and automatically select the first image, allowing for easy iteration.")
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("COMBO", {
            "image_upload": True, "image_folder": "output",
            "remote": {"route": "/internal/files/output", "refresh_button": True,
                       "control_after_refresh": "first"}})}}


_NODES = (SaveAnimatedPNG, SaveAnimatedWEBP, SaveImageAdvanced, LoadImageOutput)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {"SaveAnimatedPNG": "Save Animated PNG", "SaveAnimatedWEBP": "Save Animated WEBP",
                              "SaveImageAdvanced": "Save Image (Advanced)",
                              "LoadImageOutput": "Load Image (from Outputs)"}
