"""Live previews on the wire: which jobs get them, and the encoding of their binary frames.

ComfyUI's API clients read every binary websocket frame as an image of the job, so a frame that
nobody asked for breaks them. The rule (ComfyUI's, with its default of no previews kept for
clients that say nothing): a job's ``extra_data.preview_method`` decides when it names a method;
otherwise the server's ``--preview-method`` when one was given; otherwise previews are made only
when the client that queued the job declared on its websocket that it reads them
(``supports_preview_metadata`` in its ``feature_flags`` hello, as Weft's editor and ComfyUI's
frontend do).
"""

from __future__ import annotations

import io
from typing import Any

PREVIEW_METHODS = ("none", "auto", "latent2rgb", "taesd")


def resolve_preview_method(requested: Any, server_flag: str | None, client_reads_previews: bool) -> str:
    """The preview method of one job (see the module's rule)."""
    if isinstance(requested, str) and requested in PREVIEW_METHODS:
        return requested
    if server_flag is not None:
        return server_flag
    return "auto" if client_reads_previews else "none"


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
