"""Saving and re-loading images: animated PNG and WebP, SaveImageAdvanced's PNG / EXR / AVIF, loading
from the output folder.

Names, inputs, outputs and categories are ComfyUI's (``comfy_extras/nodes_images.py``
SaveAnimatedPNG / SaveAnimatedWEBP / SaveImageAdvanced, ``nodes.py`` LoadImageOutput). Files are
numbered as ComfyUI numbers them (``<prefix>_00001_.png``; SaveImageAdvanced without the last
underscore, ``<prefix>_00001.exr``) and written atomically; the encoders are
:mod:`ldm.imaging.animation_io`, :mod:`ldm.imaging.av_stills` (PNG, EXR) and :mod:`ldm.imaging.avif`,
the last two on PyAV as in ComfyUI.

SaveImageAdvanced's ``format`` is a DynamicCombo (png, exr, avif), and avif's ``save_mode`` one
inside it: the chosen options' inputs arrive as ``"format.bit_depth"``, ``"format.input_color_space"``,
``"format.crf"``, ``"format.save_mode"``, ``"format.save_mode.fps"`` and
``"format.save_mode.loop_count"``. Flat keys cannot carry per-option lists, so ``bit_depth`` and
``input_color_space`` list every format's choices and :meth:`SaveImageAdvanced.execute` refuses
one the chosen format does not offer (a missing one is that format's default). Metadata as
ComfyUI writes it: PNG text chunks, EXR ``string`` header attributes, the AVIF Exif item.
"""

from __future__ import annotations

from graph.context import check_interrupted
from graph.output_files import resolve_save_target, write_numbered
from graph.png_metadata import add_text_chunks
from ldm.imaging import animation_io, av_stills, avif
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
    SEARCH_ALIASES = ["save", "save image", "export image", "output image", "write image"]
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "execute"
    OUTPUT_NODE = True
    #: Per format: its bit depths and input color spaces, each list's first entry the default.
    FORMATS = {"png": (av_stills.PNG_BIT_DEPTHS, av_stills.PNG_COLOR_SPACES),
               "exr": (av_stills.EXR_BIT_DEPTHS, av_stills.EXR_COLOR_SPACES),
               "avif": (avif.BIT_DEPTHS, avif.COLOR_SPACES)}
    SAVE_MODES = ("still images", "animated")

    @classmethod
    def INPUT_TYPES(cls):
        # The sub-inputs the formats share (bit_depth, input_color_space) list every format's options;
        # execute refuses one the chosen format does not offer and fills in that format's default.
        def union(position: int) -> list[str]:
            return list(dict.fromkeys(option for spec in cls.FORMATS.values() for option in spec[position]))
        return {"required": {
                    "images": ("IMAGE", {"tooltip": "The images to save."}),
                    "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": (
                        "The prefix for the file to save. May include formatting tokens such as "
                        "%date:yyyy-MM-dd% or %Empty Latent Image.width%.")}),
                    "format": (list(cls.FORMATS), {"tooltip": "The file format in which to save the image."})},
                "optional": {
                    "format.bit_depth": (union(0), {"default": "8-bit", "advanced": True, "tooltip": (
                        "png: 8-bit or 16-bit. exr: 16-bit float (default) or 32-bit float. avif: auto uses "
                        "8-bit YUV420 for sRGB and 10-bit YUV420 for HDR.")}),
                    "format.input_color_space": (union(1), {"default": "sRGB", "advanced": True, "tooltip": (
                        "Colorspace of the input tensor. png: sRGB only. exr is always written as scene-linear in "
                        "the matching gamut: sRGB (sRGB-encoded Rec.709, the inverse sRGB EOTF is applied), HDR "
                        "(HLG-encoded Rec.2020, the inverse HLG OETF is applied), linear (scene-linear Rec.709, "
                        "unchanged) or linear ACEScg (scene-linear AP1/D60, unchanged, ACEScg chromaticities). "
                        "avif: HDR selects BT.2020/HLG and HDR PQ selects BT.2020/PQ.")}),
                    "format.crf": ("INT", {"default": 18, "min": 1, "max": 63, "advanced": True,
                                           "tooltip": "Lower values produce higher quality and larger files."}),
                    "format.save_mode": (list(cls.SAVE_MODES), {"default": "still images", "tooltip": (
                        "still images saves each image as its own file; animated saves the batch as one "
                        "animated AVIF.")}),
                    "format.save_mode.fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}),
                    "format.save_mode.loop_count": ("INT", {
                        "default": 0, "min": 0, "max": 1000, "advanced": True,
                        "tooltip": "Number of times to loop the animation. 0 loops forever."})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def _options(self, format: str, option: dict) -> tuple[str, str]:
        if format not in self.FORMATS:
            raise ValueError(f"Unsupported format {format!r}: choose one of {', '.join(self.FORMATS)}")
        depths, spaces = self.FORMATS[format]
        bit_depth = option.get("format.bit_depth", depths[0])
        color_space = option.get("format.input_color_space", spaces[0])
        if bit_depth not in depths:
            raise ValueError(f"{format} cannot be saved with bit depth {bit_depth!r}: choose one of "
                             f"{', '.join(depths)}")
        if color_space not in spaces:
            raise ValueError(f"{format} cannot be saved from input color space {color_space!r}: choose one of "
                             f"{', '.join(spaces)}")
        return bit_depth, color_space

    def execute(self, images, filename_prefix, format, prompt=None, extra_pnginfo=None, **option):
        bit_depth, color_space = self._options(format, option)
        write_metadata = not services().options.disable_metadata
        target = resolve_save_target(services().folders.output, filename_prefix, images.shape[2], images.shape[1])
        if format == "avif":
            return self._save_avif(images, target, bit_depth, color_space, option,
                                   _avif_metadata(prompt, extra_pnginfo) if write_metadata else None)
        chunks = metadata_chunks(prompt, extra_pnginfo) if write_metadata else {}
        results, counter = [], target.counter
        for batch_number, image in enumerate(images):
            check_interrupted()
            if format == "png":
                data = av_stills.png_bytes(image, bit_depth, color_space)
                if chunks:
                    data = add_text_chunks(data, chunks)
            else:
                data = av_stills.exr_bytes(image, bit_depth, color_space, chunks)
            name, counter = write_numbered(target, counter, batch_number, format, data, trailer="")
            results.append({"filename": name, "subfolder": target.subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results}, "result": (images,)}

    def _save_avif(self, images, target, bit_depth, color_space, option, metadata) -> dict:
        save_mode = option.get("format.save_mode", self.SAVE_MODES[0])
        if save_mode not in self.SAVE_MODES:
            raise ValueError(f"Unsupported save mode {save_mode!r}: choose one of {', '.join(self.SAVE_MODES)}")
        animated = save_mode == "animated"
        crf = option.get("format.crf", 18)
        fps = option.get("format.save_mode.fps", 6.0) if animated else 1.0
        loop_count = option.get("format.save_mode.loop_count", 0) if animated else None
        results, counter = [], target.counter
        for batch_number, batch in enumerate([images] if animated else images.unsqueeze(1)):
            check_interrupted()
            data = avif.avif_bytes(batch, bit_depth, color_space, crf, fps, loop_count, metadata)
            name, counter = write_numbered(target, counter, batch_number, "avif", data, trailer="")
            results.append({"filename": name, "subfolder": target.subfolder, "type": "output"})
            counter += 1
        ui = {"images": results}
        if animated and len(images) > 1:
            ui["animated"] = (True,)
        return {"ui": ui, "result": (images,)}


def _avif_metadata(prompt, extra_pnginfo) -> dict:
    """ComfyUI's AVIF metadata: ``prompt`` and every ``extra_pnginfo`` key, JSON-encoded in the Exif item."""
    metadata = {} if prompt is None else {"prompt": prompt}
    metadata.update(extra_pnginfo or {})
    return metadata


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
