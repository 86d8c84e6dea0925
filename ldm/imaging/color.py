"""Colour algorithms on IMAGE tensors ([B, H, W, C] float, 0..1): histograms, YCbCr, palette
quantisation with dithering, additive noise."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

# ITU-R BT.709-6 item 3.2: the luminance weights of R, G, B.
BT709_LUMA = (0.2126, 0.7152, 0.0722)

# Full-range BT.601 YCbCr with the rounded coefficients of kornia.color (which ComfyUI's
# ImageRGBToYUV / ImageYUVToRGB call): Cb = (B - Y) * 0.564 + 0.5, Cr = (R - Y) * 0.713 + 0.5.
_BT601_LUMA = (0.299, 0.587, 0.114)
_CB_SCALE, _CR_SCALE = 0.564, 0.713
_R_FROM_CR, _G_FROM_CR, _G_FROM_CB, _B_FROM_CB = 1.403, 0.714, 0.344, 1.773

DITHER_METHODS = ("none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16")


def histograms(image: torch.Tensor) -> dict[str, list[int]]:
    """256-bin histograms of the first image of a batch, as ComfyUI's ImageHistogram counts them:
    values scaled by 255 and truncated; ``rgb`` is the floor of the mean of the three channel
    histograms; ``luminance`` bins the BT.709 luminance of each pixel."""
    pixels = image[0].detach().float().cpu().numpy()
    levels = np.clip(pixels * 255, 0, 255).astype(np.uint8)

    def count(values: np.ndarray) -> np.ndarray:
        return np.bincount(values.ravel(), minlength=256)[:256]

    red, green, blue = (count(levels[..., channel]) for channel in range(3))
    luminance = sum(weight * pixels[..., channel] for channel, weight in enumerate(BT709_LUMA))
    return {"rgb": ((red + green + blue) // 3).tolist(),
            "luminance": count(np.clip(luminance * 255, 0, 255).astype(np.uint8)).tolist(),
            "red": red.tolist(), "green": green.tolist(), "blue": blue.tolist()}


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """[..., 3+] RGB → [..., 3] Y, Cb, Cr (chroma centred on 0.5); channels past three are ignored."""
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    luma = _BT601_LUMA[0] * red + _BT601_LUMA[1] * green + _BT601_LUMA[2] * blue
    return torch.stack((luma, (blue - luma) * _CB_SCALE + 0.5, (red - luma) * _CR_SCALE + 0.5), dim=-1)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_ycbcr` (not clamped)."""
    luma, cb, cr = ycbcr[..., 0], ycbcr[..., 1] - 0.5, ycbcr[..., 2] - 0.5
    return torch.stack((luma + _R_FROM_CR * cr, luma - _G_FROM_CR * cr - _G_FROM_CB * cb,
                        luma + _B_FROM_CB * cb), dim=-1)


def add_noise(image: torch.Tensor, seed: int, strength: float) -> torch.Tensor:
    """``image + strength * N(0, 1)`` clipped to 0..1; the noise is drawn on the CPU from a
    generator seeded with ``seed`` (as ComfyUI's ImageAddNoise, so seeds give the same image)."""
    generator = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn(image.size(), generator=generator, device="cpu").to(image)
    return torch.clip(image + strength * noise, min=0.0, max=1.0)


def bayer_matrix(order: int) -> np.ndarray:
    """The ``order`` × ``order`` ordered-dither threshold matrix, centred on zero, in units of
    one palette step (Bayer 1973, built recursively from the 2 × 2 one)."""
    matrix = np.zeros((1, 1), dtype=np.float64)
    for level in range(1, int(math.log2(order)) + 1):
        size = 4 ** level
        scaled = size * matrix
        matrix = np.block([[scaled - 1.5, scaled + 0.5], [scaled + 1.5, scaled - 0.5]]) / size
    return matrix


def quantize(image: torch.Tensor, colors: int, dither: str) -> torch.Tensor:
    """Each image reduced to a palette of at most ``colors`` colours chosen by PIL's median cut,
    mapped without dithering, with Floyd–Steinberg error diffusion, or with a Bayer ordered
    dither (``bayer-N``) that offsets each pixel by the matrix times 2·256/palette size."""
    if dither not in DITHER_METHODS:
        raise ValueError(f"unknown dither {dither!r}; one of {', '.join(DITHER_METHODS)}")
    result = image.clone()  # alpha, if any, passes through
    for index, frame in enumerate(image):
        rgb = Image.fromarray((frame[..., :3] * 255).to(torch.uint8).cpu().numpy(), mode="RGB")
        # Pillow picks the palette in a first pass; mapping onto it is a second (Pillow #5836)
        palette = rgb.quantize(colors=colors)
        if dither == "none":
            mapped = rgb.quantize(palette=palette, dither=Image.Dither.NONE)
        elif dither == "floyd-steinberg":
            mapped = rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        else:
            mapped = _ordered_dither(rgb, palette, int(dither.split("-")[1]))
        quantized = torch.from_numpy(np.array(mapped.convert("RGB"))).float() / 255
        result[index, ..., :3] = quantized.to(result)
    return result


def _ordered_dither(rgb: Image.Image, palette: Image.Image, order: int) -> Image.Image:
    spread = 2 * 256 / (len(palette.getpalette()) // 3)
    thresholds = spread * bayer_matrix(order) + 0.5
    pixels = np.asarray(rgb, dtype=np.float32)
    height, width = pixels.shape[:2]
    tiles = np.tile(thresholds, (math.ceil(height / order), math.ceil(width / order)))[:height, :width]
    shifted = np.clip(pixels + tiles[..., None], 0, 255).astype(np.uint8)
    return Image.fromarray(shifted).quantize(palette=palette, dither=Image.Dither.NONE)
