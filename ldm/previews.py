"""Live previews of sampling: the predicted x0 of batch item 0 as a small RGB PIL image.

Methods (the server's ``--preview-method``, ComfyUI's names and choice rules):

- ``none``: no previews;
- ``latent2rgb`` (and ``auto``, as in ComfyUI): a linear projection of the latent channels to RGB
  with the latent format's ``latent_rgb_factors`` / ``latent_rgb_bias`` — free, at latent
  resolution (1/8 of the image);
- ``taesd``: the TAESD decoder (:mod:`ldm.networks.taesd`) whose weights are found in the ``vae_approx``
  models under the format's ``taesd_decoder_name`` (``taesd_decoder.*`` for SD1/SD2,
  ``taesdxl_decoder.*`` for SDXL); without such a file it falls back to ``latent2rgb``.

Images larger than ``max_size`` on their longest side are shrunk to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from PIL import Image

from ldm.latent_formats import LatentFormat
from ldm.networks.taesd import decode_preview, load_taesd_decoder

log = logging.getLogger(__name__)

PREVIEW_METHODS = ("none", "auto", "latent2rgb", "taesd")

#: x0 (model space, ``[B, C, h, w]``) → preview image.
Previewer = Callable[[torch.Tensor], Image.Image]


def to_pil(rgb: torch.Tensor, max_size: int) -> Image.Image:
    """``[H, W, 3]`` in 0…1 → an RGB image, shrunk to ``max_size`` on its longest side."""
    pixels = rgb.clamp(0.0, 1.0).mul(255).to(device="cpu", dtype=torch.uint8).numpy()
    image = Image.fromarray(pixels)  # uint8 [H, W, 3] is RGB
    if max(image.size) > max_size > 0:
        image.thumbnail((max_size, max_size))
    return image


@dataclass(frozen=True)
class Latent2RGBPreviewer:
    latent_format: LatentFormat
    max_size: int = 512

    def __call__(self, x0: torch.Tensor) -> Image.Image:
        return to_pil(self.latent_format.latent_to_rgb(x0[:1])[0], self.max_size)


@dataclass(frozen=True)
class TAESDPreviewer:
    decoder: torch.nn.Module
    max_size: int = 512

    def __call__(self, x0: torch.Tensor) -> Image.Image:
        return to_pil(decode_preview(self.decoder, x0[:1])[0], self.max_size)


def find_taesd_decoder(latent_format: LatentFormat, candidates: Iterable[tuple[str, Path]]) -> Path | None:
    """The first ``(name, path)`` whose name (relative to a ``vae_approx`` folder) starts with the
    format's decoder name, as ComfyUI picks it; None when the format has no TAESD or none is there."""
    prefix = latent_format.taesd_decoder_name
    if prefix is None:
        return None
    for name, path in candidates:
        if name.startswith(prefix):
            return Path(path)
    return None


def make_previewer(method: str, latent_format: LatentFormat, candidates: Iterable[tuple[str, Path]] = (),
                   max_size: int = 512, device: torch.device | str = "cpu") -> Previewer | None:
    """The previewer for ``method``; None for ``none`` (or a format without RGB factors)."""
    if method not in PREVIEW_METHODS:
        raise ValueError(f"unknown preview method {method!r}; expected one of {list(PREVIEW_METHODS)}")
    if method == "none":
        return None
    if method == "taesd":
        path = find_taesd_decoder(latent_format, candidates)
        if path is not None:
            decoder = load_taesd_decoder(path, latent_format.channels).to(device)
            return TAESDPreviewer(decoder, max_size)
        log.warning("TAESD previews asked for, but no %s.* in the vae_approx models; using latent2rgb",
                    latent_format.taesd_decoder_name)
    if not latent_format.latent_rgb_factors:
        return None
    return Latent2RGBPreviewer(latent_format, max_size)
