"""Image files to tensors and back, with Pillow: what LoadImage reads and SaveImage writes.

Reading follows ComfyUI's LoadImage (v0.3.64): every frame of the file (GIF, animated WebP/PNG,
multi-page TIFF) becomes one image of a batch ``[F, H, W, 3]``, turned upright by its EXIF
orientation; frames whose size differs from the first are dropped; an MPO (stereo JPEG) gives
its first frame only. The mask is ``1 - alpha`` per frame, or a 64x64 zero mask for a file
without transparency. 16-bit greyscale is scaled from 0..65535 (ComfyUI clips it to 8 bits).
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence

#: File extensions listed as loadable images (what Pillow reads; lower case).
IMAGE_EXTENSIONS = (".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".gif", ".bmp",
                    ".tif", ".tiff", ".ico", ".tga", ".ppm", ".pgm", ".pbm", ".pnm", ".avif")

#: The mask of a file without transparency, as ComfyUI makes it: 64x64 zeros.
EMPTY_MASK_SIZE = 64

_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")

ImageSource = str | os.PathLike | BinaryIO


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _rgb_pixels(frame: Image.Image) -> np.ndarray:
    """``[H, W, 3]`` float32 in 0..1."""
    if frame.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(frame, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=-1)
    if frame.mode == "F":
        grey = np.clip(np.nan_to_num(np.asarray(frame, dtype=np.float32)), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(frame.convert("RGB"), dtype=np.float32) / 255.0


def _alpha(frame: Image.Image) -> np.ndarray | None:
    """``[H, W]`` float32 alpha in 0..1, or None for a frame without transparency."""
    if "A" in frame.getbands():
        return np.asarray(frame.getchannel("A"), dtype=np.float32) / 255.0
    if "transparency" in frame.info and frame.mode in ("P", "L", "RGB"):
        return np.asarray(frame.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
    return None


def load_image(source: ImageSource) -> tuple[torch.Tensor, torch.Tensor]:
    """The frames of an image file as IMAGE ``[F, H, W, 3]`` and MASK ``[F, h, w]`` (``1 - alpha``)."""
    images: list[np.ndarray] = []
    alphas: list[np.ndarray | None] = []
    with Image.open(source) as opened:
        size = None
        for frame in ImageSequence.Iterator(opened):
            frame = ImageOps.exif_transpose(frame)
            if size is None:
                size = frame.size
            elif frame.size != size:
                continue
            images.append(_rgb_pixels(frame))
            alphas.append(_alpha(frame))
            if opened.format == "MPO":  # the second frame is the other eye, not an animation step
                break
    if not images:
        raise ValueError("image file holds no frames")
    width, height = size
    if all(alpha is None for alpha in alphas):
        masks = torch.zeros((len(images), EMPTY_MASK_SIZE, EMPTY_MASK_SIZE), dtype=torch.float32)
    else:  # frames without alpha are fully opaque
        masks = torch.from_numpy(np.stack([1.0 - a if a is not None else np.zeros((height, width), np.float32)
                                           for a in alphas]))
    return torch.from_numpy(np.stack(images)), masks


#: LoadImageMask channels: the letter Pillow names the band by.
MASK_CHANNELS = {"alpha": "A", "red": "R", "green": "G", "blue": "B"}


def load_mask(source: ImageSource, channel: str) -> torch.Tensor:
    """One channel of an image's first frame as MASK ``[1, H, W]``; alpha is inverted
    (transparent = 1). An image without alpha gives an all-zero mask of its size."""
    band = MASK_CHANNELS[channel]
    with Image.open(source) as opened:
        frame = ImageOps.exif_transpose(opened)
        if frame.getbands() != ("R", "G", "B", "A"):
            if frame.mode in _SIXTEEN_BIT_MODES:
                frame = Image.fromarray(np.clip(np.asarray(frame, dtype=np.float64) / 257.0, 0, 255).astype(np.uint8))
            frame = frame.convert("RGBA")
        values = np.asarray(frame.getchannel(band), dtype=np.float32) / 255.0
    mask = torch.from_numpy(values.copy())
    if band == "A":
        mask = 1.0 - mask
    return mask.unsqueeze(0)


def load_rgba(source: ImageSource, size: tuple[int, int]) -> torch.Tensor:
    """The first frame of an image file as RGBA floats ``[H, W, 4]``, resized with Lanczos to
    ``size`` (width, height) when it differs (what ComfyUI's Painter does with its drawing)."""
    with Image.open(source) as picture:
        rgba = picture.convert("RGBA")
    if rgba.size != tuple(size):
        rgba = rgba.resize(tuple(size), Image.LANCZOS)
    return torch.from_numpy(np.asarray(rgba).astype(np.float32) / 255.0)


def to_8bit(image: torch.Tensor) -> np.ndarray:
    """An image ``[H, W, C]`` in 0..1 as uint8 pixels; like ComfyUI, 255 x value truncated."""
    values = np.nan_to_num(image.detach().cpu().float().numpy(), nan=0.0)
    return np.clip(255.0 * values, 0, 255).astype(np.uint8)


def png_bytes(image: torch.Tensor, compress_level: int = 4) -> bytes:
    """One image ``[H, W, C]`` (C = 1, 3 or 4) encoded as PNG, without metadata."""
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"cannot save an image of shape {tuple(image.shape)}; expected [H, W, 1|3|4]")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("cannot save an empty image")
    pixels = to_8bit(image)
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
