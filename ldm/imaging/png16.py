"""16-bit PNG encoding (Pillow has no 16-bit RGB mode): what SaveImageAdvanced's ``16-bit`` writes.

A PNG is the signature, then chunks ``length | type | data | CRC-32(type + data)``; 16-bit
samples are big-endian, each row led by filter type 0 (none), the rows deflated into one IDAT
(PNG specification, ISO/IEC 15948, sections 5 and 11). Values are ``x · 65535`` clipped and
truncated, as ComfyUI quantises them.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import torch

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels → greyscale, truecolour, truecolour with alpha


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def to_16bit(image: torch.Tensor) -> np.ndarray:
    """[H, W, C] in 0..1 → uint16 samples."""
    values = np.nan_to_num(image.detach().cpu().double().numpy(), nan=0.0)
    return np.clip(values * 65535.0, 0, 65535).astype(np.uint16)


def png16_bytes(image: torch.Tensor, compress_level: int = 6) -> bytes:
    """One image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] as a 16-bit PNG."""
    if image.ndim == 2:
        image = image.unsqueeze(-1)  # masks and greyscale come without a channel axis
    height, width, channels = image.shape
    if channels not in COLOR_TYPES:
        raise ValueError(f"No png/16-bit encoder for {channels}-channel images: supported channel counts are "
                         "1 (grayscale), 3 (RGB) and 4 (RGBA).")
    samples = to_16bit(image).astype(">u2").reshape(height, width * channels)
    rows = np.zeros((height, 1 + 2 * width * channels), dtype=np.uint8)  # filter byte 0, then the row
    rows[:, 1:] = samples.view(np.uint8)
    header = struct.pack(">IIBBBBB", width, height, 16, COLOR_TYPES[channels], 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level)) + _chunk(b"IEND", b""))
