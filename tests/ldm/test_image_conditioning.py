"""ldm.image_conditioning: inpainting and x4-upscaler image inputs."""

from __future__ import annotations

import torch

from ldm.image_conditioning import masked_inpaint_pixels, x4_upscale_inputs


def test_masked_inpaint_pixels_greys_the_hole_and_crops_to_the_multiple():
    pixels = torch.rand(1, 21, 18, 4)  # RGBA, not a multiple of 8
    mask = torch.zeros(1, 21, 18)
    mask[:, 5:12, 4:10] = 1.0
    mask[:, 12, 4:10] = 0.4  # a soft edge, kept as it is in the returned mask
    masked, out_mask = masked_inpaint_pixels(pixels, mask)
    assert masked.shape == (1, 16, 16, 3) and out_mask.shape == (1, 1, 16, 16)
    top, left = (21 % 8) // 2, (18 % 8) // 2
    torch.testing.assert_close(out_mask[0, 0], mask[0, top:top + 16, left:left + 16])
    hole = out_mask[0, 0].round().bool()
    assert torch.all(masked[0][hole] == 0.5)
    torch.testing.assert_close(masked[0][~hole], pixels[0, top:top + 16, left:left + 16, :3][~hole])


def test_mask_is_resized_to_the_image():
    pixels = torch.rand(2, 16, 16, 3)
    mask = torch.ones(1, 4, 4)
    _, out_mask = masked_inpaint_pixels(pixels, mask)
    assert out_mask.shape == (1, 1, 16, 16) and torch.all(out_mask == 1)


def test_x4_inputs():
    images = torch.rand(2, 30, 20, 3)
    low_res, latent_shape = x4_upscale_inputs(images, 4.0)
    assert latent_shape == (2, 4, 30, 20)  # 120×80 output, its latent a quarter
    torch.testing.assert_close(low_res, images.permute(0, 3, 1, 2) * 2 - 1)  # same size: no resampling
    low_res, latent_shape = x4_upscale_inputs(images, 2.0)
    assert latent_shape == (2, 4, 15, 10) and low_res.shape == (2, 3, 15, 10)
    assert float(low_res.min()) >= -1 and float(low_res.max()) <= 1
