"""ldm.previews: latent2rgb and TAESD previews, the method rules, the size limit."""

from __future__ import annotations

import logging

import numpy
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ldm.latent_formats import SD15, SD_X4, SDXL
from ldm.networks.taesd import taesd_decoder
from ldm.previews import (Latent2RGBPreviewer, TAESDPreviewer, find_taesd_decoder, make_previewer, to_pil)


def write_taesd(path, seed=0):
    generator = torch.Generator().manual_seed(seed)
    save_file({k: torch.randn(v.shape, generator=generator) * 0.05 for k, v in taesd_decoder().state_dict().items()},
              str(path))
    return path


def test_latent2rgb_projects_batch_item_zero_with_the_format_factors():
    x0 = torch.randn(2, 4, 6, 5, generator=torch.Generator().manual_seed(0))
    image = Latent2RGBPreviewer(SDXL)(x0)
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (5, 6)
    factors = torch.tensor(SDXL.latent_rgb_factors)
    rgb = torch.einsum("chw,cr->hwr", x0[0], factors) + torch.tensor(SDXL.latent_rgb_bias)
    expected = ((rgb + 1) / 2).clamp(0, 1).mul(255).to(torch.uint8)
    assert torch.equal(torch.from_numpy(numpy.array(image)), expected)


def test_previews_are_shrunk_to_max_size_keeping_the_aspect():
    image = to_pil(torch.rand(300, 150, 3), max_size=100)
    assert image.size == (50, 100)
    assert to_pil(torch.rand(30, 15, 3), max_size=100).size == (15, 30)


def test_method_rules(tmp_path, caplog):
    sd_decoder = write_taesd(tmp_path / "taesd_decoder.safetensors")
    xl_decoder = write_taesd(tmp_path / "taesdxl_decoder.safetensors", seed=1)
    candidates = [("taesd_decoder.safetensors", sd_decoder), ("taesdxl_decoder.safetensors", xl_decoder)]
    assert make_previewer("none", SD15, candidates) is None
    # auto is latent2rgb, as in ComfyUI (TAESD only when asked for).
    assert isinstance(make_previewer("auto", SD15, candidates), Latent2RGBPreviewer)
    assert isinstance(make_previewer("latent2rgb", SD15, candidates), Latent2RGBPreviewer)
    taesd = make_previewer("taesd", SD15, candidates, max_size=32)
    assert isinstance(taesd, TAESDPreviewer)
    assert taesd(torch.randn(1, 4, 8, 8)).size == (32, 32)  # 64×64 decoded, shrunk to 32
    # no TAESD for the format in the folder: latent2rgb, with a warning naming the file wanted
    with caplog.at_level(logging.WARNING):
        fallback = make_previewer("taesd", SDXL, candidates[:1])
    assert isinstance(fallback, Latent2RGBPreviewer) and "taesdxl_decoder" in caplog.text
    with pytest.raises(ValueError):
        make_previewer("fancy", SD15)


def test_taesd_files_are_found_by_the_format_prefix(tmp_path):
    candidates = [("sub/taesdxl_decoder.pth", tmp_path / "a"), ("taesdxl_decoder.safetensors", tmp_path / "b"),
                  ("taesd_decoder.pth", tmp_path / "c")]
    assert find_taesd_decoder(SD15, candidates) == tmp_path / "c"
    assert find_taesd_decoder(SDXL, candidates) == tmp_path / "b"
    assert find_taesd_decoder(SD_X4, candidates) is None  # the x4 upscaler has no TAESD
