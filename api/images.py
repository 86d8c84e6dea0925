"""Image checks and conversions for uploads and ``/view``, with Pillow.

Uploads must be real images of a bounded size: the pixel count is read from the header before
any decoding, so a small file that would decompress into gigabytes (a decompression bomb) is
refused without being decoded.
"""

from __future__ import annotations

import io
import warnings

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
    image = Image.open(io.BytesIO(data))
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
