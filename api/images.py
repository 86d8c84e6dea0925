"""Image checks and conversions for uploads and ``/view``, with Pillow.

Uploads must be real images of a bounded size: the pixel count is read from the header before
any decoding, so a small file that would decompress into gigabytes (a decompression bomb) is
refused without being decoded.

``/view``'s conversions (a channel, a webp/jpeg preview) decode whole images: they run in
:class:`ViewConversions`' own two threads, never on the event loop nor in the default executor
that every other handler's ``asyncio.to_thread`` shares, and their results are kept in a small
LRU keyed by the file's identity and the parameters.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import warnings
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image, PngImagePlugin

MAX_PIXELS = 64 * 1024 * 1024  # 64 megapixels: 8192×8192


class BadImageError(ValueError):
    pass


def check_image(data: bytes, max_pixels: int = MAX_PIXELS) -> str:
    """The image format of ``data`` (e.g. "PNG"); BadImageError if it is not a sane image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width <= 0 or height <= 0 or width * height > max_pixels:
                    raise BadImageError(f"image is {width}×{height} pixels; at most {max_pixels} are accepted")
                image_format = image.format
                image.verify()
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(f"image refused: {exc}") from None
    except Exception as exc:
        raise BadImageError(f"not a valid image: {exc}") from None
    if not image_format:
        raise BadImageError("unknown image format")
    return image_format


def open_checked(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    check_image(data, max_pixels)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_text_info(image: Image.Image) -> PngImagePlugin.PngInfo | None:
    """The text chunks of a PNG, to carry them over when it is re-saved."""
    text = getattr(image, "text", None) or {}
    if not text:
        return None
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    return info


def apply_mask_alpha(original: Image.Image, mask: Image.Image) -> bytes:
    """The original image with the mask's alpha channel as its alpha, as PNG (text chunks kept)."""
    info = png_text_info(original)
    result = original.convert("RGBA")
    alpha = mask.convert("RGBA").getchannel("A")
    if alpha.size != result.size:
        alpha = alpha.resize(result.size, Image.Resampling.LANCZOS)
    result.putalpha(alpha)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


def convert_for_view(data: bytes, channel: str, preview: str | None) -> tuple[bytes, str]:
    """Re-encode an image for ``/view``: one channel (rgb / a) or a webp/jpeg preview."""
    image: Image.Image = Image.open(io.BytesIO(data))
    if channel == "rgb":
        image = image.convert("RGB")
    elif channel == "a":
        alpha = image.convert("RGBA").getchannel("A")
        image = Image.new("RGBA", image.size)
        image.putalpha(alpha)
    buffer = io.BytesIO()
    if preview:
        kind, _, quality = preview.partition(";")
        kind = kind.strip().lower()
        quality_value = int(quality) if quality.strip().isdigit() else 90
        if kind in ("webp", "jpeg", "jpg"):
            fmt = "WEBP" if kind == "webp" else "JPEG"
            (image.convert("RGB") if fmt == "JPEG" else image).save(buffer, format=fmt, quality=quality_value)
            return buffer.getvalue(), f"image/{fmt.lower()}"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"


class ViewConversions:
    """``/view`` conversions: at most ``workers`` at once (the others wait in line), the same
    request in flight answered once, results cached by (path, mtime, size, channel, preview) in an
    LRU bounded by entry count and bytes. Loop-agnostic (threads and concurrent futures), so one
    instance serves every application of the process."""

    def __init__(self, workers: int = 2, entries: int = 32, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="weft-view")
        self._entries, self._max_bytes = entries, max_bytes
        self._cache: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._cached_bytes = 0
        self._in_flight: dict[tuple, Future] = {}
        self._lock = threading.Lock()

    async def convert(self, path: Path, channel: str, preview: str | None) -> tuple[bytes, str]:
        """(bytes, media type) of ``path`` converted; the exceptions of :func:`convert_for_view`."""
        stat = os.stat(path)
        key = (str(path), stat.st_mtime_ns, stat.st_size, channel, preview)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            future = self._in_flight.get(key)
            if future is None:
                future = self._pool.submit(self._run, key, path, channel, preview)
                self._in_flight[key] = future
        # shielded: a client that goes away must not cancel a conversion others wait for
        return await asyncio.shield(asyncio.wrap_future(future))

    def _run(self, key: tuple, path: Path, channel: str, preview: str | None) -> tuple[bytes, str]:
        try:
            result = convert_for_view(path.read_bytes(), channel, preview)
        except BaseException:
            with self._lock:
                self._in_flight.pop(key, None)
            raise
        with self._lock:
            self._in_flight.pop(key, None)
            if len(result[0]) <= self._max_bytes // 4:
                self._cache[key] = result
                self._cached_bytes += len(result[0])
            while len(self._cache) > self._entries or self._cached_bytes > self._max_bytes:
                _, (data, _) = self._cache.popitem(last=False)
                self._cached_bytes -= len(data)
        return result

