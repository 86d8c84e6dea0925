"""``VaeHandle`` (the ``VAE`` value between nodes): images <-> raw latents, whole or in tiles.

The first stage is a KL or a VQ autoencoder (:mod:`ldm.loading.first_stage`); the downscale
factor ``r`` (4, 8, 16, 32) and the latent channels come from the model. Images are ComfyUI
``IMAGE`` tensors ``[B, H, W, 3]`` in 0..1 on the CPU; latents are raw (unscaled)
``[B, C, H / r, W / r]``. ``encode`` returns the latent the diffusion model works in: the KL
posterior *mean* (deterministic, like ComfyUI's VAEEncode) or the VQ *pre-quantisation* latent;
``decode`` of a VQ latent snaps it to the codebook first. ``encode_distribution`` gives a KL
posterior's mean and log-variance for callers that want to sample. ``scale_factor`` is the LDM's
latent scale for this first stage, set by whoever knows it (an LDM config).

When a whole-image pass would not fit in the memory the device has free (an estimate from the
activation sizes, or a real out-of-memory error on CUDA), the handle falls back to tiles by
itself. Tiles overlap and are blended with linear ramps across the overlaps.

Every pass's result is checked to be finite: a float16 pass that overflowed is redone in the
fallback dtype, and one still not finite raises :class:`~ldm.finite.NonFiniteError`.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch

from ldm.devices import free_memory_bytes
from ldm.finite import is_finite, vae_error
from ldm.loading.first_stage import DEFAULT_SCALE_FACTORS, KL, first_stage_kind
from ldm.networks.autoencoder import AutoencoderKL, VaeConfig
from ldm.networks.vq_autoencoder import VQAutoencoder

log = logging.getLogger(__name__)

#: Live copies of the widest activation during a VAE pass (input, output, norm temporary).
ACTIVATION_COPIES = 3
#: Fraction of the free memory a pass may plan to use.
MEMORY_MARGIN = 0.8
#: Tile sizes (pixels) tried, largest first, when falling back to tiles by itself.
AUTO_TILE_SIZES = (1024, 768, 512, 384, 256, 128, 64)


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D blending weights: rising over the first ``overlap`` entries, falling over the last."""
    weights = torch.ones(length)
    steps = min(overlap, length)
    if steps > 0:
        ramp = torch.arange(1, steps + 1, dtype=torch.float32) / (steps + 1)
        if ramp_start:
            weights[:steps] = torch.minimum(weights[:steps], ramp)
        if ramp_end:
            weights[length - steps:] = torch.minimum(weights[length - steps:], ramp.flip(0))
    return weights


def _starts(size: int, tile: int, overlap: int, align: int) -> list[int]:
    """Tile origins along one axis covering ``size``; the last tile is pushed back to the edge."""
    if size <= tile:
        return [0]
    stride = max(align, (tile - overlap) // align * align)
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int, overlap: int,
                scale_num: int, scale_den: int, out_channels: int, align: int = 1) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` [B, C, H, W] and blend the results.

    ``fn`` maps a tile of size ``(h, w)`` to one of size ``(h * scale_num / scale_den, ...)``
    (decode: 8/1, encode: 1/8). ``tile`` and ``overlap`` are in input units; tile origins are
    multiples of ``align`` so every tile maps onto whole output pixels. Overlaps are blended with
    linear ramps, so a pointwise ``fn`` gives exactly the untiled result.
    """
    b, _, height, width = x.shape
    out_h, out_w = height * scale_num // scale_den, width * scale_num // scale_den
    out = None
    weight_sum = torch.zeros(1, 1, out_h, out_w)
    ys, xs = _starts(height, tile, overlap, align), _starts(width, tile, overlap, align)
    ramp = overlap * scale_num // scale_den
    for y0 in ys:
        for x0 in xs:
            piece = x[:, :, y0:y0 + tile, x0:x0 + tile]
            result = fn(piece).float().cpu()
            if out is None:
                out = torch.zeros(b, out_channels, out_h, out_w)
            oy, ox = y0 * scale_num // scale_den, x0 * scale_num // scale_den
            th, tw = result.shape[-2:]
            wy = _ramp(th, ramp, y0 > 0, y0 + tile < height)
            wx = _ramp(tw, ramp, x0 > 0, x0 + tile < width)
            mask = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, oy:oy + th, ox:ox + tw] += result * mask
            weight_sum[:, :, oy:oy + th, ox:ox + tw] += mask
    return out / weight_sum


def crop_to_multiple(pixels: torch.Tensor, ratio: int) -> torch.Tensor:
    """Centre-crop ``[B, H, W, C]`` images to multiples of ``ratio`` (ComfyUI's VAEEncode crop)."""
    for dim in (1, 2):
        size = pixels.shape[dim]
        kept = size // ratio * ratio
        if kept != size:
            pixels = pixels.narrow(dim, (size % ratio) // 2, kept)
    return pixels


def _attention_elements(config: VaeConfig, h: int, w: int) -> int:
    """Entries of the largest attention score matrix over a latent of ``h x w`` (0 without any)."""
    pixels = h * w if config.mid_attn else 0
    for level in range(config.levels):  # level i runs at (h, w) * 2^(levels-1-i)
        if config.has_attn(level):
            side = 2 ** (config.levels - 1 - level)
            pixels = max(pixels, h * w * side * side)
    return pixels * pixels


class VaeHandle:
    """A loaded first-stage autoencoder (KL or VQ) with the device, dtype and memory policy to run it.

    ``scale_factor`` (default: :data:`~ldm.loading.first_stage.DEFAULT_SCALE_FACTORS` of the kind)
    is what the LDM multiplies this first stage's latents by; the handle itself works on raw latents.
    """

    def __init__(self, model: AutoencoderKL | VQAutoencoder, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, free_memory: Callable[[], int] | None = None,
                 fallback_dtype: torch.dtype = torch.float32, scale_factor: float | None = None):
        self.model = model
        self.config = model.config
        self.kind = first_stage_kind(model)
        self.scale_factor = DEFAULT_SCALE_FACTORS[self.kind] if scale_factor is None else scale_factor
        self.device = torch.device(device)
        self.dtype = dtype
        self.fallback_dtype = fallback_dtype  # a non-finite fp16 decode is redone in this dtype
        self._free_memory = free_memory or (lambda: free_memory_bytes(self.device))

    @property
    def downscale_ratio(self) -> int:
        return self.config.downscale_ratio

    @property
    def latent_channels(self) -> int:
        return self.config.embed_dim

    # --- memory estimates ---------------------------------------------------------------------

    def _bytes(self, elements: int) -> int:
        return elements * torch.empty((), dtype=self.dtype).element_size() * ACTIVATION_COPIES

    def decode_memory_bytes(self, latent_shape: tuple[int, ...]) -> int:
        """Estimated peak activation bytes to decode latents of ``latent_shape`` [B, C, h, w]."""
        b, _, h, w = latent_shape
        cfg = self.config
        widest = 0
        for level in range(cfg.levels):  # level i runs at (h, w) * 2^(levels-1-i)
            side = 2 ** (cfg.levels - 1 - level)
            channels = cfg.ch * max(cfg.ch_mult[level], cfg.ch_mult[min(level + 1, cfg.levels - 1)])
            widest = max(widest, channels * h * w * side * side)
        return self._bytes(b * (widest + _attention_elements(cfg, h, w)))  # scores, if materialised

    def encode_memory_bytes(self, pixel_shape: tuple[int, ...]) -> int:
        """Estimated peak activation bytes to encode images of ``pixel_shape`` [B, H, W, C]."""
        b, height, width = pixel_shape[:3]
        cfg = self.config
        widest = 0
        for level in range(cfg.levels):
            side = 2 ** level
            channels = cfg.ch * max(cfg.ch_mult[level], cfg.ch_mult[max(level - 1, 0)])
            widest = max(widest, channels * (height // side) * (width // side))
        h, w = height // cfg.downscale_ratio, width // cfg.downscale_ratio
        return self._bytes(b * (widest + _attention_elements(cfg, h, w)))

    def _fits(self, needed: int) -> bool:
        return needed <= MEMORY_MARGIN * self._free_memory()

    def _auto_tile(self, estimate: Callable[[int], int]) -> int:
        for size in AUTO_TILE_SIZES:
            if self._fits(estimate(size)):
                return size
        return AUTO_TILE_SIZES[-1]

    # --- raw passes ---------------------------------------------------------------------------

    def _finite_pass(self, operation: str, run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor):
        """``run`` (the autoencoder's ``operation``) on ``x`` in the VAE's dtype. A float16 result
        that is not finite is redone in the fallback dtype (SD2's and SDXL's VAEs overflow float16;
        the layers cast their fp16 weights per call); one still not finite raises NonFiniteError."""
        dtypes = [self.dtype]
        with torch.no_grad():  # not inference_mode: callers may edit results in place
            result = run(x.to(self.device, self.dtype))
            finite = is_finite(result[0] if isinstance(result, tuple) else result)  # encode: the mean
            if not finite and self.dtype == torch.float16 and self.fallback_dtype != torch.float16:
                log.warning("VAE %s overflowed in float16; redoing it in %s", operation, self.fallback_dtype)
                dtypes.append(self.fallback_dtype)
                result = run(x.to(self.device, self.fallback_dtype))
                finite = is_finite(result[0] if isinstance(result, tuple) else result)
            if not finite:
                raise vae_error(operation, self.model, dtypes, self.device, x)
        return result

    def _encode_chw(self, x: torch.Tensor) -> torch.Tensor:
        return self._finite_pass("encode", self.model.encode_latent, x).float().cpu()

    def _decode_chw(self, z: torch.Tensor) -> torch.Tensor:
        return self._finite_pass("decode", self.model.decode, z).float().cpu()

    @staticmethod
    def _to_chw(pixels: torch.Tensor) -> torch.Tensor:
        return pixels[..., :3].movedim(-1, 1).float() * 2.0 - 1.0

    @staticmethod
    def _to_image(decoded: torch.Tensor) -> torch.Tensor:
        return ((decoded + 1.0) / 2.0).clamp(0.0, 1.0).movedim(1, -1).contiguous()

    # --- public API ---------------------------------------------------------------------------

    def encode_distribution(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mean, logvar)`` [B, C, h, w] of images [B, H, W, C] (cropped to multiples).
        KL first stages only: a VQ encoder gives one latent, no distribution."""
        if self.kind != KL:
            raise TypeError(f"a {self.kind.upper()} first stage has no posterior distribution; use encode()")
        x = self._to_chw(crop_to_multiple(pixels, self.downscale_ratio))
        mean, logvar = self._finite_pass("encode", self.model.encode, x)
        return mean.float().cpu(), logvar.float().cpu()

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Raw latents (posterior mean) of images [B, H, W, C]; tiles by itself when memory is short."""
        pixels = crop_to_multiple(pixels, self.downscale_ratio)
        if not self._fits(self.encode_memory_bytes((1, *pixels.shape[1:]))):
            return self.encode_tiled(pixels, tile_size=self._auto_tile(
                lambda s: self.encode_memory_bytes((1, s, s, 3))))
        try:
            return torch.cat([self._encode_chw(self._to_chw(item))
                              for item in pixels.split(self._batch_that_fits(
                                  self.encode_memory_bytes((1, *pixels.shape[1:]))))])
        except torch.OutOfMemoryError:
            log.warning("VAE encode ran out of memory; retrying in tiles")
            return self.encode_tiled(pixels, tile_size=AUTO_TILE_SIZES[-3])

    def decode(self, samples: torch.Tensor) -> torch.Tensor:
        """Images [B, H, W, 3] in 0..1 of raw latents; tiles by itself when memory is short."""
        per_item = self.decode_memory_bytes((1, *samples.shape[1:]))
        if not self._fits(per_item):
            r = self.downscale_ratio
            return self.decode_tiled(samples, tile_size=self._auto_tile(
                lambda s: self.decode_memory_bytes((1, samples.shape[1], s // r, s // r))))
        try:
            return torch.cat([self._to_image(self._decode_chw(item))
                              for item in samples.split(self._batch_that_fits(per_item))])
        except torch.OutOfMemoryError:
            log.warning("VAE decode ran out of memory; retrying in tiles")
            return self.decode_tiled(samples, tile_size=AUTO_TILE_SIZES[-3])

    def _batch_that_fits(self, per_item: int) -> int:
        return max(1, int(MEMORY_MARGIN * self._free_memory() // max(per_item, 1)))

    def encode_tiled(self, pixels: torch.Tensor, tile_size: int = 512, overlap: int = 64) -> torch.Tensor:
        """Raw latents of images [B, H, W, C], encoded in ``tile_size`` pixel tiles that overlap."""
        r = self.downscale_ratio
        pixels = crop_to_multiple(pixels, r)
        tile = max(r, tile_size // r * r)
        overlap = min(max(0, overlap // r * r), tile // 2)
        return tiled_apply(self._encode_chw, self._to_chw(pixels), tile=tile,
                           overlap=overlap, scale_num=1, scale_den=r, out_channels=self.latent_channels,
                           align=r)

    def decode_tiled(self, samples: torch.Tensor, tile_size: int = 512, overlap: int = 64) -> torch.Tensor:
        """Images of raw latents, decoded in tiles of ``tile_size`` *pixels* overlapping by ``overlap``."""
        r = self.downscale_ratio
        tile = max(1, tile_size // r)
        overlap = min(max(0, overlap // r), tile // 2)
        decoded = tiled_apply(self._decode_chw, samples.float(), tile=tile, overlap=overlap, scale_num=r,
                              scale_den=1, out_channels=self.config.out_channels)
        return self._to_image(decoded)
