"""nodes.vae: ComfyUI's VAE nodes over a tiny VAE."""

from __future__ import annotations

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.loading.detect import VAE_PREFIX
from ldm.loading.weights import strip_prefix
from ldm.model import build_vae
from ldm.tiny import tiny_checkpoint
from nodes import vae as vae_nodes


@pytest.fixture(scope="module")
def vae():
    state_dict, _ = tiny_checkpoint("sd1", seed=4, include_text=False)
    fp32 = detect_compute("cpu", force_dtype=torch.float32)
    return build_vae(strip_prefix(state_dict, VAE_PREFIX), compute=fp32)


def test_schema_matches_comfyui():
    registry = NodeRegistry()
    mappings = (vae_nodes.NODE_CLASS_MAPPINGS, vae_nodes.NODE_DISPLAY_NAME_MAPPINGS)
    assert registry.register_mappings(*mappings) == {}
    info = registry.object_info()
    tiled = info["VAEDecodeTiled"]["input"]["required"]
    assert list(tiled) == ["samples", "vae", "tile_size", "overlap", "temporal_size", "temporal_overlap"]
    assert tiled["tile_size"][1] == {"default": 512, "min": 64, "max": 4096, "step": 32, "advanced": True}
    assert all(tiled[name][1]["advanced"] for name in ("overlap", "temporal_size", "temporal_overlap"))
    assert tiled["temporal_size"][1]["tooltip"] == "Only used for video VAEs: Amount of frames to decode at a time."
    encode_tiled = info["VAEEncodeTiled"]["input"]["required"]
    assert encode_tiled["temporal_size"][1]["tooltip"] == (
        "Only used for video VAEs: Amount of frames to encode at a time.")
    assert info["VAEEncodeTiled"]["input"]["required"]["tile_size"][1]["step"] == 64
    assert info["VAEEncodeForInpaint"]["input"]["required"]["grow_mask_by"] == (
        "INT", {"default": 6, "min": 0, "max": 64, "step": 1})
    assert {node["category"] for node in info.values()} == {"model/latent"}


def test_encode_decode_round_trip_shapes(vae):
    pixels = torch.rand(2, 40, 48, 4)  # an alpha channel is ignored
    (latent,) = vae_nodes.VAEEncode().encode(vae, pixels)
    assert set(latent) == {"samples"} and latent["samples"].shape == (2, 4, 5, 6)
    (image,) = vae_nodes.VAEDecode().decode(vae, latent)
    assert image.shape == (2, 40, 48, 3) and image.dtype == torch.float32


def test_tiled_nodes(vae):
    latent = {"samples": torch.randn(1, 4, 16, 12)}
    (image,) = vae_nodes.VAEDecodeTiled().decode(vae, latent, 64, 64, 64, 8)  # overlap capped at 16
    assert image.shape == (1, 128, 96, 3) and torch.isfinite(image).all()
    (whole,) = vae_nodes.VAEDecodeTiled().decode(vae, latent, 512, 64, 64, 8)
    torch.testing.assert_close(whole, vae.decode(latent["samples"]))
    (encoded,) = vae_nodes.VAEEncodeTiled().encode(vae, torch.rand(1, 96, 64, 3), 64, 32)
    assert encoded["samples"].shape == (1, 4, 12, 8)


def test_encode_for_inpaint(vae):
    pixels = torch.rand(1, 35, 42, 3)  # cropped to 32 x 40 around the centre (offsets 1, 1)
    mask = torch.zeros(1, 35, 42)
    mask[0, 10:20, 12:30] = 1.0
    (latent,) = vae_nodes.VAEEncodeForInpaint().encode(vae, pixels, mask, 6)
    assert latent["samples"].shape == (1, 4, 4, 5)
    noise_mask = latent["noise_mask"]
    assert noise_mask.shape == (1, 1, 32, 40)
    # 6x6 box, padding 3: cell i is set when the window [i-3, i+2] touches the mask, which covers
    # rows 9..18 and columns 11..28 after the crop -> rows 7..21, columns 9..31
    rows = noise_mask[0, 0].amax(dim=1).nonzero().flatten()
    cols = noise_mask[0, 0].amax(dim=0).nonzero().flatten()
    assert (rows.min().item(), rows.max().item()) == (7, 21)
    assert (cols.min().item(), cols.max().item()) == (9, 31)
    # the encoder saw grey where the mask is
    cropped, crop_mask = pixels[:, 1:33, 1:41].clone(), mask[:, 1:33, 1:41]
    cropped[crop_mask.bool()] = 0.5
    torch.testing.assert_close(latent["samples"], vae.encode(cropped))
    (no_grow,) = vae_nodes.VAEEncodeForInpaint().encode(vae, pixels, mask, 0)
    torch.testing.assert_close(no_grow["noise_mask"][0, 0], crop_mask[0])
