"""Bounding boxes over image batches: cropping to them and drawing them.

A box is ComfyUI's BOUNDING_BOX value, ``{"x", "y", "width", "height"}`` in pixels (detectors
add ``"label"`` and ``"score"``). A BOUNDING_BOX socket may carry one box, a list of boxes (for
every frame) or a list of lists (one list per frame); :func:`per_frame` reads all three.
Behaviour follows ComfyUI's CropByBBoxes and DrawBBoxes (Dec 2026).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ldm.imaging import operations as imaging

#: The 80 COCO object classes, in the detectors' label order.
COCO_CLASSES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]
#: Outline colours, chosen by label index.
BOX_COLORS = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 165, 0), (128, 0, 128), (0, 255, 255),
              (255, 20, 147), (100, 149, 237)]


def per_frame(boxes, frames: int) -> list[list[dict]]:
    """``boxes`` as one list of boxes per frame: a single box or a flat list applies to every
    frame; a list of lists is taken as it is."""
    if isinstance(boxes, dict):
        return [[boxes]] * frames
    if not isinstance(boxes, list) or not boxes:
        return [[]] * frames
    if not isinstance(boxes[0], list):
        return [boxes] * frames
    return boxes


def _union(boxes: list[dict]) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` of the smallest rectangle holding every box (truncated to pixels)."""
    return (min(int(b["x"]) for b in boxes), min(int(b["y"]) for b in boxes),
            max(int(b["x"] + b["width"]) for b in boxes), max(int(b["y"] + b["height"]) for b in boxes))


def _crop_region(boxes: list[dict], width: int, height: int, padding: int) -> tuple[int, int, int, int] | None:
    """The region to cut for a frame: the boxes' union grown by ``padding`` and kept inside the
    image; an empty one becomes a square of 30 % of the short side, centred, 10 % from the top
    (where a subject's face usually is); None when even that is empty."""
    x1, y1, x2, y2 = _union(boxes)
    x1, y1 = max(0, x1 - padding), max(0, y1 - padding)
    x2, y2 = min(width, x2 + padding), min(height, y2 + padding)
    if x2 > x1 and y2 > y1:
        return x1, y1, x2, y2
    side = int(min(height, width) * 0.3)
    x1, y1 = max(0, (width - side) // 2), max(0, int(height * 0.1))
    x2, y2 = min(width, x1 + side), min(height, y1 + side)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def crop_to_boxes(image: torch.Tensor, boxes, width: int, height: int, padding: int,
                  keep_aspect: bool) -> torch.Tensor | None:
    """One ``width x height`` crop per frame that has boxes, stacked; None when no frame has any.

    Frame ``i`` uses the ``i``-th list of boxes (the last list for later frames). The crop is
    resized with area averaging, stretched, or with ``keep_aspect`` fitted inside and centred
    on black."""
    frames = per_frame(boxes, image.shape[0])
    crops = []
    for index in range(image.shape[0]):
        frame_boxes = frames[min(index, len(frames) - 1)]
        if not frame_boxes:
            continue
        region = _crop_region(frame_boxes, image.shape[2], image.shape[1], padding)
        if region is None:
            crops.append(image.new_zeros((1, height, width, image.shape[-1])))
            continue
        x1, y1, x2, y2 = region
        crop = image[index:index + 1, y1:y2, x1:x2]
        if keep_aspect:
            scale = min(width / (x2 - x1), height / (y2 - y1))
            fit_w, fit_h = max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale))
            fitted = imaging.resample_image(crop, fit_w, fit_h, "area")
            canvas = image.new_zeros((1, height, width, image.shape[-1]))
            top, left = (height - fit_h) // 2, (width - fit_w) // 2
            canvas[:, top:top + fit_h, left:left + fit_w] = fitted
            crops.append(canvas)
        else:
            crops.append(imaging.resample_image(crop, width, height, "area"))
    return torch.cat(crops) if crops else None


def canvas_for(frames: list[list[dict]]) -> torch.Tensor:
    """Black frames just large enough for every box (640 x 640 when there are none)."""
    width = max((int(b["x"] + b["width"]) for boxes in frames for b in boxes), default=640)
    height = max((int(b["y"] + b["height"]) for boxes in frames for b in boxes), default=640)
    return torch.zeros((len(frames), height, width, 3))


def draw_boxes(frame: torch.Tensor, boxes: list[dict]) -> torch.Tensor:
    """An image ``[H, W, C]`` with each box outlined (3 pixels wide) and, for a COCO label, the
    label and score written in its corner; boxes are drawn from the lowest score up, so the most
    confident ends on top. Goes through 8-bit pixels, as ComfyUI's PIL conversion does."""
    pixels = (frame.detach().float().cpu().numpy() * 255.0).astype(np.uint8)
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for box in sorted(boxes, key=lambda b: float(b.get("score", 1.0))):
        label = box.get("label") if box.get("label") in COCO_CLASSES else None
        colour = BOX_COLORS[(COCO_CLASSES.index(label) if label is not None else 0) % len(BOX_COLORS)]
        if picture.mode == "L":
            colour = colour[0]
        x1, y1 = box["x"], box["y"]
        draw.rectangle([x1, y1, x1 + box["width"], y1 + box["height"]], outline=colour, width=3)
        if label is not None:
            draw.text((x1 + 2, y1 + 2), f"{label} {float(box.get('score', 1.0)):.2f}", fill=colour, font=font)
    drawn = np.asarray(picture).astype(np.float32) / 255.0
    return torch.from_numpy(drawn.reshape(frame.shape))
