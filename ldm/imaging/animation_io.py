"""A batch of images as one animated file (APNG or animated WebP), encoded in memory with Pillow.

The layouts are ComfyUI's (``comfy_api.latest._ui.ImageSaveHelper``): each frame shown
``int(1000 / fps)`` ms; an APNG carries its metadata as private ``comf`` chunks after the image
data (``keyword NUL text``), which readers of plain ``tEXt`` skip; an animated WebP carries it
in EXIF, the prompt as ``"prompt:<json>"`` under Model (0x0110) and each other entry as
``"<key>:<json>"`` from Make (0x010F) downwards.
"""

from __future__ import annotations

import io

import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ldm.imaging.image_io import to_8bit

EXIF_MODEL, EXIF_MAKE = 0x0110, 0x010F


def _frames(images: torch.Tensor) -> list[Image.Image]:
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"an animation needs a batch of images [F, H, W, C], got shape {tuple(images.shape)}")
    return [Image.fromarray(to_8bit(image)) for image in images]


def frame_duration_ms(fps: float) -> int:
    return int(1000.0 / fps)


def animated_png_bytes(images: torch.Tensor, fps: float, compress_level: int,
                       metadata: dict[str, str] | None = None) -> bytes:
    """The batch as an APNG; ``metadata`` (keyword → text) goes into ``comf`` chunks."""
    frames = _frames(images)
    info = None
    if metadata:
        info = PngInfo()
        for key, text in metadata.items():
            info.add(b"comf", key.encode("latin-1") + b"\0" + text.encode("latin-1"), after_idat=True)
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", pnginfo=info, compress_level=compress_level, save_all=True,
                   duration=frame_duration_ms(fps), append_images=frames[1:])
    return buffer.getvalue()


def animated_webp_bytes(images: torch.Tensor, fps: float, lossless: bool, quality: int, method: int,
                        metadata: dict[str, str] | None = None) -> bytes:
    """The batch as an animated WebP; ``metadata`` (key → JSON text, ``prompt`` first) goes into EXIF."""
    frames = _frames(images)
    exif = frames[0].getexif()
    next_tag = EXIF_MAKE
    for key, text in (metadata or {}).items():
        if key == "prompt":
            exif[EXIF_MODEL] = f"prompt:{text}"
        else:
            exif[next_tag] = f"{key}:{text}"
            next_tag -= 1
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, duration=frame_duration_ms(fps),
                   append_images=frames[1:], exif=exif, lossless=lossless, quality=quality, method=method)
    return buffer.getvalue()
