"""ldm.latent_formats: published scale factors, exact round trips, cheap RGB previews."""

from __future__ import annotations

import torch

from ldm.latent_formats import FAMILY_LATENT_FORMATS, SD15, SD_X4, SDXL


def test_published_scale_factors():
    assert (SD15.scale_factor, SDXL.scale_factor, SD_X4.scale_factor) == (0.18215, 0.13025, 0.08333)
    assert SD15.taesd_decoder_name == "taesd_decoder" and SDXL.taesd_decoder_name == "taesdxl_decoder"
    assert FAMILY_LATENT_FORMATS["sdxl_refiner"] is SDXL and FAMILY_LATENT_FORMATS["sd2_v"] is SD15


def test_process_in_and_out_are_inverse():
    latent = torch.randn(2, 4, 8, 8)
    for fmt in (SD15, SDXL, SD_X4):
        torch.testing.assert_close(fmt.process_out(fmt.process_in(latent)), latent)
        torch.testing.assert_close(fmt.process_in(latent), latent * fmt.scale_factor)


def test_latent_to_rgb_uses_the_factors():
    latent = torch.zeros(1, 4, 2, 3)
    latent[0, 0] = 1.0
    rgb = SDXL.latent_to_rgb(latent)
    assert rgb.shape == (1, 2, 3, 3)
    expected = (torch.tensor([0.3651, 0.4232, 0.4341]) + torch.tensor([0.1084, -0.0175, -0.0011]) + 1) / 2
    torch.testing.assert_close(rgb[0, 1, 2], expected)
