"""Bounding-box nodes: a box primitive, cropping an image batch to boxes, drawing boxes.

Names, inputs, outputs and categories are ComfyUI's (Dec 2026: ``comfy_extras/nodes_images.py``
PrimitiveBoundingBox, the CropByBBoxes of its pose nodes, the DrawBBoxes of its detection
nodes). A BOUNDING_BOX value is ``{"x", "y", "width", "height"}`` in pixels, or a list of them,
or a list per frame; see :mod:`ldm.imaging.bounding_boxes`, which holds the algorithms.
"""

from __future__ import annotations

import torch

from ldm.imaging import bounding_boxes
from nodes.image import MAX_RESOLUTION


def _int(default: int, minimum: int, maximum: int, **extra) -> tuple:
    return ("INT", {"default": default, "min": minimum, "max": maximum, **extra})


class PrimitiveBoundingBox:
    CATEGORY = "utilities/primitive"
    RETURN_TYPES = ("BOUNDING_BOX",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": _int(0, 0, MAX_RESOLUTION), "y": _int(0, 0, MAX_RESOLUTION),
                             "width": _int(512, 1, MAX_RESOLUTION), "height": _int(512, 1, MAX_RESOLUTION)}}

    def execute(self, x, y, width, height):
        return ({"x": x, "y": y, "width": width, "height": height},)


class CropByBBoxes:
    CATEGORY = "image/transform"
    DESCRIPTION = "Crop and resize regions from the input image batch based on provided bounding boxes."
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE",),
            "bboxes": ("BOUNDING_BOX", {"forceInput": True}),
            "output_width": _int(512, 64, 4096, step=8, tooltip="Width each crop is resized to."),
            "output_height": _int(512, 64, 4096, step=8, tooltip="Height each crop is resized to."),
            "padding": _int(0, 0, 1024, step=1,
                            tooltip="Extra padding in pixels added on each side of the bbox before cropping."),
            "keep_aspect": (["stretch", "pad"], {"default": "stretch"})}}

    def crop(self, image, bboxes, output_width, output_height, padding, keep_aspect="stretch"):
        crops = bounding_boxes.crop_to_boxes(image, bboxes, output_width, output_height, padding,
                                             keep_aspect == "pad")
        # Without a single box there is nothing to crop: the image passes through.
        return (image if crops is None else crops,)


class DrawBBoxes:
    CATEGORY = "detection/"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "draw"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"bboxes": ("BOUNDING_BOX", {"forceInput": True})},
                "optional": {"image": ("IMAGE",)}}

    def draw(self, bboxes, image=None):
        frames = bounding_boxes.per_frame(bboxes, image.shape[0] if image is not None else 1)
        if image is None:
            image = bounding_boxes.canvas_for(frames)
        # A frame past the last list of boxes reuses that list (ComfyUI fails there).
        boxes = [frames[min(index, len(frames) - 1)] for index in range(image.shape[0])]
        drawn = [bounding_boxes.draw_boxes(frame, frame_boxes) if frame_boxes else frame.cpu()
                 for frame, frame_boxes in zip(image, boxes)]
        return (torch.stack(drawn).to(image.device),)


_NODES = (PrimitiveBoundingBox, CropByBBoxes, DrawBBoxes)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {"PrimitiveBoundingBox": "Bounding Box", "CropByBBoxes": "Crop By Bounding Boxes",
                              "DrawBBoxes": "Draw BBoxes"}
