"""Encoding of live preview images for binary websocket frames."""

from __future__ import annotations

import io
from typing import Any


def encode_preview(image: Any, max_size: int) -> tuple[bytes, str] | None:
    """(bytes, "JPEG"|"PNG") for a PIL image, or a ready (format, bytes) pair; None if unusable."""
    if isinstance(image, tuple) and len(image) == 2 and isinstance(image[1], (bytes, bytearray)):
        image_format, data = image
        return bytes(data), str(image_format).upper()
    if not hasattr(image, "save"):
        return None
    if max(image.size) > max_size:
        image = image.copy()
        image.thumbnail((max_size, max_size))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), "JPEG"
