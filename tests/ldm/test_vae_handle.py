"""ldm.vae.VaeHandle: IMAGE <-> LATENT layouts, cropping, tiles, blending, memory fallback.

(Named test_vae_handle.py: pytest's default import mode needs unique basenames, and
tests/nodes/test_vae.py tests the VAE nodes.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ldm.loading.detect import VAE_PREFIX
from ldm.loading.weights import strip_prefix
from ldm.model import build_vae
from ldm.tiny import tiny_checkpoint
from ldm.vae import crop_to_multiple, tiled_apply

PLENTY = 1 << 40


def _handle(fp32, family="sd1", free=PLENTY):
    state_dict, _ = tiny_checkpoint(family, seed=2, include_text=False)
    return build_vae(strip_prefix(state_dict, VAE_PREFIX), compute=fp32, free_memory=lambda: free)


def _record(handle, name):
    calls = []
    original = getattr(handle, name)

    def wrapper(x):
        calls.append(tuple(x.shape))
        return original(x)

    setattr(handle, name, wrapper)
    return calls


def test_layouts_and_crop(fp32):
    vae = _handle(fp32)
    assert vae.downscale_ratio == 8 and vae.latent_channels == 4
    pixels = torch.rand(2, 35, 42, 3)
    latents = vae.encode(pixels)
    assert latents.shape == (2, 4, 4, 5) and latents.dtype == torch.float32
    mean, logvar = vae.encode_distribution(pixels)
    torch.testing.assert_close(latents, mean)
    image = vae.decode(latents)
    assert image.shape == (2, 32, 40, 3)
    assert image.min() >= 0 and image.max() <= 1


def test_crop_is_centred_like_comfyui():
    pixels = torch.arange(13 * 11, dtype=torch.float32).reshape(1, 13, 11, 1)
    cropped = crop_to_multiple(pixels, 8)
    assert cropped.shape == (1, 8, 8, 1)
    assert cropped[0, 0, 0, 0] == pixels[0, 2, 1, 0]  # offsets (13 % 8) // 2 = 2 and (11 % 8) // 2 = 1


def test_tiled_blending_is_exact_for_local_maps():
    x = torch.randn(1, 4, 20, 28)
    up = lambda t: F.interpolate(t, scale_factor=8, mode="nearest")  # noqa: E731
    tiled = tiled_apply(up, x, tile=8, overlap=3, scale_num=8, scale_den=1, out_channels=4)
    torch.testing.assert_close(tiled, up(x))
    pixels = torch.randn(1, 3, 96, 80)
    down = lambda t: F.avg_pool2d(t, 8)  # noqa: E731
    torch.testing.assert_close(tiled_apply(down, pixels, tile=32, overlap=16, scale_num=1, scale_den=8,
                                           out_channels=3, align=8), down(pixels))


def test_one_tile_covering_everything_equals_the_whole_pass(fp32):
    vae = _handle(fp32)
    latents = torch.randn(1, 4, 6, 5)
    torch.testing.assert_close(vae.decode_tiled(latents, tile_size=64, overlap=16), vae.decode(latents))
    pixels = torch.rand(1, 48, 40, 3)
    torch.testing.assert_close(vae.encode_tiled(pixels, tile_size=64, overlap=16), vae.encode(pixels))


def test_small_tiles_cover_the_image(fp32):
    vae = _handle(fp32)
    calls = _record(vae, "_decode_chw")
    image = vae.decode_tiled(torch.randn(1, 4, 12, 10), tile_size=64, overlap=16)
    assert image.shape == (1, 96, 80, 3) and torch.isfinite(image).all()
    assert len(calls) == 4 and all(shape[-2:] == (8, 8) for shape in calls)
    enc_calls = _record(vae, "_encode_chw")
    latents = vae.encode_tiled(torch.rand(1, 96, 80, 3), tile_size=64, overlap=16)
    assert latents.shape == (1, 4, 12, 10) and len(enc_calls) == 4


def test_falls_back_to_tiles_when_memory_is_short(fp32):
    whole = _handle(fp32)
    latents = torch.randn(1, 4, 10, 12)
    needed = whole.decode_memory_bytes(tuple(latents.shape))
    short = _handle(fp32, free=needed // 2)
    calls = _record(short, "_decode_chw")
    image = short.decode(latents)
    assert image.shape == (1, 80, 96, 3) and torch.isfinite(image).all()
    assert len(calls) > 1 and all(shape[-1] < 12 for shape in calls)
    enc_needed = whole.encode_memory_bytes((1, 80, 96, 3))
    short_enc = _handle(fp32, free=enc_needed // 2)
    enc_calls = _record(short_enc, "_encode_chw")
    assert short_enc.encode(torch.rand(1, 80, 96, 3)).shape == (1, 4, 10, 12)
    assert len(enc_calls) > 1


def test_batches_are_split_to_fit(fp32):
    vae = _handle(fp32)
    per_item = vae.decode_memory_bytes((1, 4, 4, 4))
    tight = _handle(fp32, free=int(per_item * 2.6))  # room for two items at a time
    calls = _record(tight, "_decode_chw")
    assert tight.decode(torch.randn(5, 4, 4, 4)).shape == (5, 32, 32, 3)
    assert [shape[0] for shape in calls] == [2, 2, 1]


@pytest.mark.parametrize("family, ratio", [("sd_x4", 4)])
def test_x4_vae_variant(fp32, family, ratio):
    vae = _handle(fp32, family)
    assert vae.downscale_ratio == ratio
    assert vae.encode(torch.rand(1, 16, 16, 3)).shape == (1, 4, 4, 4)
