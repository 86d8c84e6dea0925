"""Layer and canvas nodes: the bounding-box editor, padding an image, and layer stacks (adding
layers, layers from boxes, compositing them into one image).

Names, inputs, outputs and categories are ComfyUI's (Dec 2026: ``nodes_bounding_boxes.py``
CreateBoundingBoxes; ``nodes_compositor.py`` AddLayer, LayersFromBoundingBoxes and
ImageCompositor; PadImageNode from ComfyUI's node documentation, its source not being public, so
its category, ``image/transform``, is assumed).
They are V3 nodes; here they are V1 classes, PadImageNode's DynamicCombo inputs the flat dotted
keys of the API prompt (``"padding_type.left"``, ``"padding_style.color"``, …; see
``facade/comfy_api/latest/_dynamic.py``). A LAYERS value is the plain document described in
:mod:`ldm.imaging.layer_stack`; blending is :mod:`ldm.imaging.compositing`; the box editor's
shapes (pixel boxes, Ideogram elements, regions) are :mod:`ldm.imaging.box_elements`; padding is in
:mod:`ldm.imaging.editing`.

Deviation: ImageCompositor's ``compositor`` input (the editor's saved state) is optional here, as
ComfyUI's documentation lists it, so prompts written without the editor run.
"""

from __future__ import annotations

import math
import secrets
import string

import torch

from ldm.imaging import box_elements, editing, layer_stack
from ldm.imaging.compositing import LAYER_MODES
from nodes.image import MAX_RESOLUTION, save_png_batch
from nodes.image_tools import hex_to_rgb


def _int(default: int, minimum: int, maximum: int, **extra) -> tuple:
    return ("INT", {"default": default, "min": minimum, "max": maximum, **extra})


def _preview_files(images: torch.Tensor) -> list[dict]:
    """ComfyUI's ``UI.PreviewImage`` files: fast PNGs in temp, no metadata."""
    suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))
    return save_png_batch(images, f"ComfyUI_temp_{suffix}", "temp", 1)


class CreateBoundingBoxes:
    CATEGORY = "utilities"
    DESCRIPTION = ("Draw bounding boxes in a canvas. Outputs Ideogram prompt elements, pixel-space bounding boxes, "
                   "and a preview image.")
    RETURN_TYPES = ("IMAGE", "BOUNDING_BOX", "ARRAY")
    RETURN_NAMES = ("preview", "bboxes", "elements")
    OUTPUT_NODE = True
    EXPERIMENTAL = True
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 1024, "min": 64, "max": 16384, "step": 16}
        return {"required": {
                    "width": ("INT", {**size, "tooltip": "Width of the canvas and the pixel grid for the bounding "
                                                         "boxes."}),
                    "height": ("INT", {**size, "tooltip": "Height of the canvas and the pixel grid for the bounding "
                                                          "boxes."}),
                    "editor_state": ("BOUNDING_BOXES", {
                        "tooltip": "Draw bounding boxes and set each box type, text, description, color palette. "
                                   "Start with background element first and foreground last."})},
                "optional": {
                    "background": ("IMAGE", {"tooltip": "Optional image used as background in the canvas and "
                                                        "preview."}),
                    "bboxes": ("BOUNDING_BOX,ARRAY,STRING", {
                        "tooltip": "Bounding boxes, elements, or a JSON string to initialize the canvas. A new "
                                   "upstream value initializes the canvas; edits made on the canvas take priority and "
                                   "are kept until the upstream value changes again."}),
                    "last_incoming": ("BOUNDING_BOXES", {
                        "tooltip": "Internal state managed by the canvas: the upstream bboxes value that last "
                                   "initialized it. Leave empty to re-initialize the canvas from the bboxes input on "
                                   "the next run."})}}

    def execute(self, width, height, editor_state=None, last_incoming=None, background=None, bboxes=None):
        incoming = box_elements.boxes_from_input(bboxes, width, height)
        applied = last_incoming if isinstance(last_incoming, list) else []
        # A new upstream value replaces the canvas edits; an unchanged one leaves them alone.
        source = incoming if incoming and incoming != applied else (editor_state or [])
        regions = box_elements.boxes_to_regions(source, width, height)
        preview = box_elements.render_preview(regions, width, height, background)
        pixels = [box_elements.region_pixels(region, width, height) for region in regions if isinstance(region, dict)]
        ui = {"dims": [width, height]}
        if incoming:
            ui["input_bboxes"] = incoming
        return {"ui": ui, "result": (preview, [pixels] if pixels else [],
                                     [box_elements.region_element(region) for region in regions])}


class PadImageNode:
    CATEGORY = "image/transform"
    DESCRIPTION = ("Pad an image with a solid color or a mirrored copy of its edges, by exact pixels per side, by a "
                   "size multiplier, or up to the next multiple of a number.")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "pad"
    #: The inputs each DynamicCombo option brings.
    PADDING_TYPES = {"pad dimensions": ("left", "top", "right", "bottom"), "pad by multiplier": ("multiplier",),
                     "pad to multiple": ("multiple",)}
    PADDING_STYLES = {"color": ("color", "feathering"), "mirror image": ()}

    @classmethod
    def INPUT_TYPES(cls):
        def side(name: str) -> tuple:
            return _int(0, 0, MAX_RESOLUTION, tooltip=f"Pixels to add on the {name}.")
        return {"required": {
                    "image": ("IMAGE", {"tooltip": "The image to pad."}),
                    "padding_type": (list(cls.PADDING_TYPES), {
                        "tooltip": "How much padding to add: exact amounts per side, an output size relative to the "
                                   "input, or the next multiple."}),
                    "padding_style": (list(cls.PADDING_STYLES), {
                        "tooltip": "What to fill the padded area with: a color or a mirror image of the edges."})},
                "optional": {
                    "padding_type.left": side("left"), "padding_type.top": side("top"),
                    "padding_type.right": side("right"), "padding_type.bottom": side("bottom"),
                    "padding_type.multiplier": ("FLOAT", {
                        "default": 1.0, "min": 1.0, "max": 8.0, "step": 0.01,
                        "tooltip": "Output size relative to the input, for example 1.5 adds 25% on each side. The "
                                   "padding is split evenly between opposite sides."}),
                    "padding_type.multiple": _int(32, 1, MAX_RESOLUTION, tooltip=(
                        "Pad so that the width and height are divisible by this number. The padding is split evenly "
                        "between opposite sides, with the extra pixel going to the right and the bottom.")),
                    "padding_style.color": ("COLOR", {"default": "#000000",
                                                      "tooltip": "Fill color for the padded area; alpha is ignored."}),
                    "padding_style.feathering": _int(0, 0, MAX_RESOLUTION, tooltip=(
                        "Blend this many pixels of the image edge into the fill color on the padded sides. 0 leaves "
                        "a hard edge."))}}

    @staticmethod
    def _chosen(combo: str, choice: str, names: tuple, options: dict) -> dict:
        missing = [f"{combo}.{name}" for name in names if f"{combo}.{name}" not in options]
        if missing:
            raise ValueError(f"{combo} {choice!r} needs the inputs {', '.join(missing)}")
        return {name: options[f"{combo}.{name}"] for name in names}

    def pad(self, image, padding_type, padding_style, **options):
        if padding_type not in self.PADDING_TYPES or padding_style not in self.PADDING_STYLES:
            raise ValueError(f"Unsupported padding: {padding_type!r}, {padding_style!r}")
        amounts = self._chosen("padding_type", padding_type, self.PADDING_TYPES[padding_type], options)
        style = self._chosen("padding_style", padding_style, self.PADDING_STYLES[padding_style], options)
        height, width = image.shape[1], image.shape[2]
        if padding_type == "pad dimensions":
            left, top, right, bottom = (amounts[name] for name in ("left", "top", "right", "bottom"))
        else:
            margin = (editing.margin_for_multiplier if padding_type == "pad by multiplier"
                      else editing.margin_to_multiple)
            (left, right), (top, bottom) = (margin(size, *amounts.values()) for size in (width, height))
        if left == top == right == bottom == 0:
            return (image,)
        if padding_style == "mirror image":
            return (editing.pad_mirrored(image, left, top, right, bottom),)
        # the colour's alpha digits, if any, are ignored
        color = hex_to_rgb(style["color"].lstrip("#")[:6])
        return (editing.pad_with_color(image, left, top, right, bottom, color, style["feathering"]),)


_LAYERS_TOOLTIP = "Layer stack to append to. Leave unconnected to start a new stack."


class AddLayer:
    CATEGORY = "image"
    RETURN_TYPES = ("LAYERS",)
    EXPERIMENTAL = True
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE", {"tooltip": "Layer content at its native size. A batch expands to "
                                                            "consecutive layers."})},
                "optional": {
                    "layers": ("LAYERS", {"tooltip": _LAYERS_TOOLTIP}),
                    "mask": ("MASK", {"tooltip": "Transparency mask for this layer. Masked areas (value 1) become "
                                                 "transparent, multiplying with any alpha channel the image already "
                                                 "carries."}),
                    "name": ("STRING", {"default": "", "tooltip": "Layer name shown in the compositor editor."}),
                    "x": _int(0, -MAX_RESOLUTION, MAX_RESOLUTION,
                              tooltip="Initial horizontal placement on the canvas."),
                    "y": _int(0, -MAX_RESOLUTION, MAX_RESOLUTION, tooltip="Initial vertical placement on the canvas."),
                    "opacity": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                          "tooltip": "Initial layer opacity."}),
                    "blend_mode": (list(LAYER_MODES), {
                        "default": "normal",
                        "tooltip": "Initial blend mode, applied against the layers below. On the bottom layer over "
                                   "the default transparent background, non-normal modes produce transparency."}),
                    "rotation": ("FLOAT", {"default": 0.0, "min": -360.0, "max": 360.0, "step": 1.0,
                                           "tooltip": "Initial rotation in degrees, clockwise."}),
                    "width": _int(0, 0, MAX_RESOLUTION, tooltip="Initial display width. 0 keeps the image's native "
                                                                "width."),
                    "height": _int(0, 0, MAX_RESOLUTION, tooltip="Initial display height. 0 keeps the image's native "
                                                                 "height."),
                    "z_index": _int(0, -1000, 1000, tooltip="Stacking override. Layers are stable-sorted by z_index; "
                                                            "equal values keep their list order."),
                    "flip_h": ("BOOLEAN", {"default": False, "tooltip": "Flip the layer horizontally."}),
                    "flip_v": ("BOOLEAN", {"default": False, "tooltip": "Flip the layer vertically."})}}

    def execute(self, image, layers=None, mask=None, name="", x=0, y=0, opacity=1.0, blend_mode="normal",
                rotation=0.0, width=0, height=0, z_index=0, flip_h=False, flip_v=False):
        item: dict = {"image": image, "type": "raster", "x": int(x), "y": int(y), "z_index": int(z_index)}
        # Only what differs from the defaults is written, as ComfyUI's documents carry it.
        optional = {"mask": (mask, mask is not None), "name": (name, bool(name)),
                    "opacity": (float(opacity), opacity != 1.0), "blend_mode": (blend_mode, blend_mode != "normal"),
                    "rotation": (math.radians(rotation), rotation != 0.0), "w": (int(width), width > 0),
                    "h": (int(height), height > 0), "flip_h": (True, flip_h), "flip_v": (True, flip_v)}
        item.update({key: value for key, (value, present) in optional.items() if present})
        return (layer_stack.extended(layers, [item]),)


class LayersFromBoundingBoxes:
    CATEGORY = "image"
    DESCRIPTION = ("Turn an image batch plus its bounding boxes into a layer stack, one layer per frame, each placed "
                   "by its own box. Use this when a node emits layers as a batch - a batch carries a single placement "
                   "for every frame, so the individual positions are otherwise lost.")
    RETURN_TYPES = ("LAYERS",)
    EXPERIMENTAL = True
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        canvas = "Document canvas {}. 0 derives it from the placed layers."
        return {"required": {
                    "image": ("IMAGE", {"tooltip": "Image batch; each frame becomes one layer."}),
                    "bboxes": ("BOUNDING_BOX,ARRAY,STRING", {"tooltip": (
                        "Placement boxes, index-aligned with the image batch. Accepts bounding boxes (x, y, width, "
                        "height), normalized elements (with a 'bbox' - these need canvas_width/canvas_height to "
                        "resolve to pixels), or a JSON string of either. Frames without a matching box are placed at "
                        "the origin. A box's width/height scales the layer to fit it. metadata.name (or desc) and "
                        "metadata.z_index are used when present, and metadata.content_rect (frame-relative) crops the "
                        "frame to its real content.")})},
                "optional": {
                    "mask": ("MASK", {"tooltip": "Per-frame transparency, index-aligned with the image batch "
                                                 "(1 = transparent, LoadImage convention)."}),
                    "layers": ("LAYERS", {"tooltip": _LAYERS_TOOLTIP}),
                    "crop_to_content": ("BOOLEAN", {"default": True, "tooltip": (
                        "Crop each frame to metadata.content_rect where present and place the content at the box "
                        "position plus the rect offset. Leave on for batches whose frames are padded - it keeps only "
                        "the real content at its true spot.")}),
                    "canvas_width": _int(0, 0, MAX_RESOLUTION, tooltip=canvas.format("width")),
                    "canvas_height": _int(0, 0, MAX_RESOLUTION, tooltip=canvas.format("height"))}}

    def execute(self, image, bboxes, mask=None, layers=None, crop_to_content=True, canvas_width=0, canvas_height=0):
        bboxes = box_elements.parse_json(bboxes)
        if box_elements.has_elements(bboxes) and (canvas_width <= 0 or canvas_height <= 0):
            raise ValueError("normalized element boxes need canvas_width and canvas_height to resolve to pixels")
        boxes = box_elements.boxes_from_input(bboxes, canvas_width, canvas_height)
        previous = layers.get("layers") or [] if isinstance(layers, dict) else []
        # New layers stack above every layer already there, in batch order.
        base_z = max((layer_stack.as_int(item.get("z_index"), 0) for item in previous), default=-1) + 1
        items = [self._item(image[index:index + 1], layer_stack.mask_frame(mask, index),
                            boxes[index] if index < len(boxes) else {}, base_z + index, crop_to_content)
                 for index in range(image.shape[0])]
        canvas = (canvas_width, canvas_height) if canvas_width > 0 and canvas_height > 0 else None
        return (layer_stack.extended(layers, items, canvas),)

    @staticmethod
    def _item(frame, frame_mask, box: dict, z_index: int, crop_to_content: bool) -> dict:
        meta = box.get("metadata") if isinstance(box.get("metadata"), dict) else {}
        x, y = layer_stack.as_int(box.get("x"), 0), layer_stack.as_int(box.get("y"), 0)
        rect = meta.get("content_rect")
        cropped = False
        if crop_to_content and isinstance(rect, (list, tuple)) and len(rect) == 4:
            # content_rect is [left, top, width, height] inside the frame, clamped to it
            frame_h, frame_w = int(frame.shape[1]), int(frame.shape[2])
            left, top, width, height = (layer_stack.as_int(value, 0) for value in rect)
            left, top = min(max(left, 0), frame_w), min(max(top, 0), frame_h)
            width, height = min(max(width, 0), frame_w - left), min(max(height, 0), frame_h - top)
            if width > 0 and height > 0:
                frame = frame[:, top:top + height, left:left + width]
                if frame_mask is not None:
                    frame_mask = frame_mask[:, top:top + height, left:left + width]
                x, y, cropped = x + left, y + top, True
        item: dict = {"image": frame, "type": "raster", "x": x, "y": y,
                      "z_index": layer_stack.as_int(meta.get("z_index"), z_index)}
        if not cropped:  # the box's size scales the layer; cropped content keeps its own size
            for key, size in (("w", box.get("width")), ("h", box.get("height"))):
                if layer_stack.as_int(size, 0) > 0:
                    item[key] = layer_stack.as_int(size, 0)
        if frame_mask is not None:
            item["mask"] = frame_mask
        name = meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") else meta.get("desc")
        if isinstance(name, str) and name:
            item["name"] = name
        return item


class ImageCompositor:
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    OUTPUT_NODE = True
    EXPERIMENTAL = True
    FUNCTION = "execute"
    OUTPUT_TOOLTIPS = ("Composited image. Carries an alpha channel when the composite has transparent areas (e.g. "
                       "hidden background), otherwise plain RGB.",
                       "Transparency of the composite (1 = fully transparent). All zeros when the composite is opaque.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"layers": ("LAYERS", {"tooltip": (
                    "Layer stack to composite; build it with Add Layer. Items are stacked by z_index, batch frames "
                    "inside an item expand to consecutive layers, and item placement, opacity, and blend mode define "
                    "the initial composition. Without an explicit document canvas the size is a best-effort maximum "
                    "extent of the placed layers. A saved composition that matches the current inputs takes "
                    "priority.")})},
                "optional": {"compositor": ("COMPOSITOR", {
                    "tooltip": "Layered composition saved by the compositor editor."})}}

    def execute(self, layers, compositor=None):
        frames = layer_stack.expand_frames(layer_stack.document_items(layers))
        alphas = [layer_stack.frame_alpha(frame) for frame in frames]
        layer_files = []
        for frame, alpha in zip(frames, alphas):
            rgb = frame.image[:1, :, :, :3]
            layer_files.extend(_preview_files(rgb if alpha is None else torch.cat([rgb, alpha.unsqueeze(-1)], dim=-1)))
        digests = layer_stack.fingerprints(frames, alphas)
        state = layer_stack.parse_state(compositor)
        replay = state is not None and bool(frames) and state.inputs == digests
        canvas = None
        if replay:
            canvas = state.canvas
            rgba = layer_stack.composite(frames, alphas, state)
        elif frames:
            canvas = layer_stack.document_canvas(layers) or layer_stack.canvas_extent(frames)
            rgba = layer_stack.composite(frames, alphas, layer_stack.state_from_frames(frames, canvas))
        else:
            size = layer_stack.EMPTY_SIZE
            rgba = torch.zeros((1, size, size, 4))
            rgba[..., 3] = 1.0
        image, mask = layer_stack.split_alpha(rgba)
        ui = {"images": _preview_files(image), "animated": (False,), "compositor_layers": layer_files,
              "compositor_inputs": digests, "compositor_bboxes": layer_stack.ui_entries(frames)}
        if canvas is not None:
            ui["compositor_canvas"] = [{"w": int(canvas[0]), "h": int(canvas[1])}]
        if layer_stack.state_provided(compositor) and not replay:
            ui["compositor_state_stale"] = [True]
        return {"ui": ui, "result": (image, mask)}


_NODES = (CreateBoundingBoxes, PadImageNode, AddLayer, LayersFromBoundingBoxes, ImageCompositor)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {"CreateBoundingBoxes": "Create Bounding Boxes", "PadImageNode": "Pad Image",
                              "AddLayer": "Add Layer",
                              "LayersFromBoundingBoxes": "Layers From Bounding Boxes",
                              "ImageCompositor": "Create Layered Image"}
