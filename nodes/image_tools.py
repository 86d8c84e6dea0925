"""Image tools: preview a mask, compare two images, paint, draw text, capture a webcam frame, run
a GLSL fragment shader over images.

Names, inputs, outputs and categories are ComfyUI's (``comfy_extras/nodes_mask.py`` MaskPreview,
``nodes_image_compare.py`` ImageCompare, ``nodes_painter.py`` Painter, ``nodes_text_overlay.py``
TextOverlay, ``nodes_webcam.py`` WebcamCapture, ``nodes_glsl.py`` GLSLShader). The editor's
painter and webcam widgets upload their pictures and send the file name; the server reads them
as LoadImage does. GLSLShader is a V3 node with dynamic inputs in ComfyUI; here its Autogrow
groups and its ``size_mode`` DynamicCombo are the flat dotted keys the API prompt carries
(``"images.image0"``, ``"floats.u_float3"``, ``"size_mode.width"``, …), see
``facade/comfy_api/latest/_dynamic.py``. The rendering itself is :mod:`ldm.imaging.glsl`, the text
layout :mod:`ldm.imaging.text_overlay`.
"""

from __future__ import annotations

import hashlib
import secrets
import string

import torch

from graph.folders import UnsafePathError
from ldm.imaging import glsl, image_io, text_overlay
from ldm.imaging.curves import curve_from_value
from nodes.image import MAX_RESOLUTION, LoadImage, annotated_path, save_png_batch
from nodes.services import services


def _temp_suffix() -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))


def _preview(images, prefix: str) -> list[dict]:
    """PreviewImage's files: fast PNGs in temp under ``<prefix>_temp_<random>``, no metadata."""
    return save_png_batch(images, f"{prefix}_temp_{_temp_suffix()}", "temp", 1)


class MaskPreview:
    CATEGORY = "image/mask"
    DESCRIPTION = "Preview the masks without saving them to the ComfyUI output directory."
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("mask",)
    FUNCTION = "execute"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",)},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def execute(self, mask, prompt=None, extra_pnginfo=None):
        # ComfyUI's PreviewMask: the mask as a grey RGB image, in temp, without metadata
        grey = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)
        return {"ui": {"images": _preview(grey, "ComfyUI"), "animated": (False,)}, "result": (mask,)}


class ImageCompare:
    CATEGORY = "image"
    DESCRIPTION = "Compares two images side by side with a slider."
    EXPERIMENTAL = True
    RETURN_TYPES = ()
    FUNCTION = "execute"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"compare_view": ("IMAGECOMPARE", {"socketless": True})},
                "optional": {"image_a": ("IMAGE",), "image_b": ("IMAGE",)}}

    def execute(self, compare_view=None, image_a=None, image_b=None):
        ui = {"a_images": [], "b_images": []}
        if image_a is not None and len(image_a) > 0:
            ui["a_images"] = _preview(image_a, "comfy.compare.a")
        if image_b is not None and len(image_b) > 0:
            ui["b_images"] = _preview(image_b, "comfy.compare.b")
        return {"ui": ui}


def hex_to_rgb(color: str) -> tuple[float, float, float]:
    """``#rrggbb`` as 0..1 floats; anything else is black, as in ComfyUI's Painter."""
    digits = color.lstrip("#")
    if len(digits) != 6:
        return (0.0, 0.0, 0.0)
    try:
        return tuple(int(digits[index:index + 2], 16) / 255.0 for index in (0, 2, 4))
    except ValueError:
        return (0.0, 0.0, 0.0)


def _drawing_path(name: str):
    """The painter's uploaded drawing (an annotated name, input folder by default)."""
    try:
        path = annotated_path(services().folders, name)
    except UnsafePathError as exc:
        raise FileNotFoundError(f"Invalid image file: {name}") from exc
    if not path.is_file():
        raise FileNotFoundError(f"Invalid image file: {name}")
    return path


class Painter:
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("IMAGE", "MASK")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 512, "min": 64, "max": 4096, "step": 64, "socketless": True, "hidden": True}
        return {"required": {"mask": ("STRING", {"default": "", "socketless": True, "widgetType": "PAINTER",
                                                 "image_upload": True}),
                             "width": ("INT", size), "height": ("INT", size),
                             "bg_color": ("COLOR", {"default": "#000000"})},
                "optional": {"image": ("IMAGE", {"tooltip": "Optional base image to paint over"})}}

    def execute(self, mask, width, height, bg_color="#000000", image=None):
        if image is not None:
            base = image[:1]
            height, width = base.shape[1], base.shape[2]
        else:
            base = torch.tensor(hex_to_rgb(bg_color), dtype=torch.float32).expand(1, height, width, 3)
        if mask and mask.strip():
            drawing = image_io.load_rgba(_drawing_path(mask), (width, height))
            paint, coverage = drawing[..., :3], drawing[..., 3:]
            # the drawing's alpha is both the output mask and its coverage over the base
            out = paint * coverage + base[0, ..., :3].to(drawing) * (1.0 - coverage)
            result = (out.unsqueeze(0), coverage[..., 0].unsqueeze(0))
        else:
            result = (base, torch.zeros((1, height, width), dtype=torch.float32))
        return {"ui": {"images": _preview(result[0], "ComfyUI"), "animated": (False,)}, "result": result}

    @classmethod
    def IS_CHANGED(cls, mask, width, height, bg_color="#000000", image=None):
        if not (mask and mask.strip()):
            return ""
        try:
            path = annotated_path(services().folders, mask)
        except UnsafePathError:
            return ""
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


class TextOverlay:
    CATEGORY = "text"
    DESCRIPTION = "Draw text overlay on an image or batch of images."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        padding = {"default": 1.0, "min": 0.0, "max": 25.0, "step": 0.5}
        return {"required": {
                    "images": ("IMAGE",),
                    "text": ("STRING", {"multiline": True, "default": ""}),
                    "font_size": ("FLOAT", {"default": 5.0, "min": 0.5, "max": 50.0, "step": 0.5,
                                            "tooltip": "Font size as a percentage of the image height."}),
                    "color": ("COLOR", {"default": "#ffffff", "tooltip": "Color of the text."}),
                    "position": (list(text_overlay.POSITIONS), {"default": "top"}),
                    "align": (list(text_overlay.ALIGNMENTS), {"default": "left"}),
                    "outline": ("BOOLEAN", {"default": True, "tooltip": "Draw a black outline around the text."})},
                # newer in ComfyUI than the other inputs: optional, so prompts from before them run
                "optional": {
                    "padding_x": ("FLOAT", {**padding, "tooltip": "Left and right padding as a percentage of "
                                                                  "the shorter image side."}),
                    "padding_y": ("FLOAT", {**padding, "tooltip": "Top and bottom padding as a percentage of "
                                                                  "the shorter image side."})}}

    def execute(self, images, text, font_size, color, position, align, outline, padding_x=1.0, padding_y=1.0):
        # the editor draws its live preview over the first input frame
        ui = {"source_images": _preview(images[:1], "comfy.textoverlay.source")}
        out = text_overlay.overlay_text(images, text, font_size, color, position, align, outline,
                                        padding_x, padding_y)
        return {"ui": ui, "result": (out,)}


class WebcamCapture(LoadImage):
    """The editor captures a frame, uploads it (``webcam/<n>.png [temp]``) and sends its name;
    width, height and capture_on_queue steer the capture in the browser only."""
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "load_capture"

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 1}
        return {"required": {"image": ("WEBCAM", {}), "width": ("INT", size), "height": ("INT", size),
                             "capture_on_queue": ("BOOLEAN", {"default": True})}}

    def load_capture(self, image, width, height, capture_on_queue):
        return self.load_image(image)[:1]

    @classmethod
    def IS_CHANGED(cls, image, width, height, capture_on_queue):
        return super().IS_CHANGED(image)


def _grown(group: str, prefix: str, count: int, spec: tuple) -> dict:
    return {f"{group}.{prefix}{index}": spec for index in range(count)}


class GLSLShader:
    CATEGORY = "image/shader"
    DESCRIPTION = "Apply GLSL ES fragment shaders to images. u_resolution (vec2) is always available."
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE", "IMAGE")
    RETURN_NAMES = ("IMAGE0", "IMAGE1", "IMAGE2", "IMAGE3")
    OUTPUT_TOOLTIPS = tuple(f"Available via layout(location = {index}) out vec4 fragColor{index} in the shader code"
                            for index in range(glsl.MAX_OUTPUTS))
    FUNCTION = "execute"  # not an output node; its ui (inputs and outputs) feeds the editor's preview

    @classmethod
    def INPUT_TYPES(cls):
        image = ("IMAGE", {"tooltip": "Images are available as u_image0-4 (sampler2D) in the shader code"})
        size = {"min": 1, "max": MAX_RESOLUTION, "step": 1}
        optional = {
            "size_mode.width": ("INT", {"default": 512, **size}),
            "size_mode.height": ("INT", {"default": 512, **size}),
            **{f"images.image{index}": image for index in range(1, glsl.MAX_IMAGES)},
            **_grown("floats", "u_float", glsl.MAX_UNIFORMS, ("FLOAT", {"default": 0.0, "forceInput": True})),
            **_grown("ints", "u_int", glsl.MAX_UNIFORMS, ("INT", {"default": 0, "forceInput": True})),
            **_grown("bools", "u_bool", glsl.MAX_BOOLS, ("BOOLEAN", {"default": False, "forceInput": True})),
            **_grown("curves", "u_curve", glsl.MAX_CURVES, ("CURVE", {"forceInput": True})),
        }
        return {"required": {
                    "fragment_shader": ("STRING", {
                        "default": glsl.DEFAULT_FRAGMENT_SHADER, "multiline": True,
                        "tooltip": "GLSL fragment shader source code (GLSL ES 3.00 / WebGL 2.0 compatible)"}),
                    "size_mode": (["from_input", "custom"], {
                        "tooltip": "Output size: 'from_input' uses first input image dimensions, "
                                   "'custom' allows manual size"}),
                    "images.image0": image},
                "optional": optional}

    def execute(self, fragment_shader, size_mode, **grown):
        images = [grown[f"images.image{index}"] for index in range(glsl.MAX_IMAGES)
                  if grown.get(f"images.image{index}") is not None]
        if not images:
            raise ValueError("At least one input image is required")
        if size_mode == "custom":
            width, height = grown.get("size_mode.width", 512), grown.get("size_mode.height", 512)
        else:
            height, width = images[0].shape[1], images[0].shape[2]
        uniforms = glsl.ShaderUniforms(
            floats=_values(grown, "floats.u_float", glsl.MAX_UNIFORMS, 0.0),
            ints=_values(grown, "ints.u_int", glsl.MAX_UNIFORMS, 0),
            bools=_values(grown, "bools.u_bool", glsl.MAX_BOOLS, False),
            curves=[None if value is None else curve_from_value(value).lookup_table()
                    for value in _values(grown, "curves.u_curve", glsl.MAX_CURVES, None)])
        outputs = glsl.render(fragment_shader, images, width, height, uniforms)
        inputs_ui = [entry for image in images for entry in save_png_batch(image, "GLSLShader_input", "temp", 1)]
        outputs_ui = save_png_batch(outputs[0], "GLSLShader_output", "temp", 1)
        return {"ui": {"input_images": inputs_ui, "images": outputs_ui}, "result": tuple(outputs)}


def _values(grown: dict, prefix: str, count: int, missing):
    """One group's grown inputs in index order, up to the last one the prompt has. A gap is
    filled with ``missing`` so each value keeps its own uniform name (ComfyUI packs the present
    values together instead; the editor grows slots without gaps, so both agree in practice)."""
    present = [index for index in range(count) if f"{prefix}{index}" in grown]
    if not present:
        return []
    values = [grown.get(f"{prefix}{index}") for index in range(present[-1] + 1)]
    return [missing if value is None else value for value in values]


_NODES = (MaskPreview, ImageCompare, Painter, TextOverlay, WebcamCapture, GLSLShader)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {"MaskPreview": "Preview Mask", "ImageCompare": "Image Compare", "Painter": "Painter",
                              "TextOverlay": "Draw Text Overlay", "WebcamCapture": "Webcam Capture",
                              "GLSLShader": "GLSL Shader"}
