"""nodes.inpaint: InpaintModelConditioning and SD_4XUpscale_Conditioning."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from graph.registry import NodeRegistry
from ldm.sampling.model_conds import CondContext, inpaint_conds, x4_upscaler_conds
from nodes import inpaint


def fake_vae():
    """Encodes to [B, 4, H/8, W/8]: the mean colour of each 8×8 cell, repeated on 4 channels
    (enough to see which pixels went in)."""
    def encode(pixels):
        cells = torch.nn.functional.avg_pool2d(pixels.permute(0, 3, 1, 2)[:, :3], 8)
        return cells.mean(dim=1, keepdim=True).repeat(1, 4, 1, 1)
    return SimpleNamespace(downscale_ratio=8, encode=encode)


def test_schema():
    registry = NodeRegistry()
    assert registry.register_mappings(inpaint.NODE_CLASS_MAPPINGS, core=True) == {}
    info = registry.object_info()
    imc = info["InpaintModelConditioning"]
    assert imc["input_order"]["required"] == ["positive", "negative", "vae", "pixels", "mask", "noise_mask"]
    assert imc["output"] == ["CONDITIONING", "CONDITIONING", "LATENT"]
    assert imc["output_name"] == ["positive", "negative", "latent"] and imc["category"] == "model/conditioning"
    x4 = info["SD_4XUpscale_Conditioning"]
    assert x4["input_order"]["required"] == ["images", "positive", "negative", "scale_ratio", "noise_augmentation"]
    assert x4["input"]["required"]["noise_augmentation"][1]["default"] == 0.25
    assert x4["category"] == "conditioning/upscale_diffusion"


def test_inpaint_model_conditioning():
    pixels = torch.rand(1, 32, 32, 3)
    mask = torch.zeros(1, 32, 32)
    mask[:, :16, :16] = 1.0
    positive = [[torch.ones(1, 77, 8), {"strength": 0.5}]]
    negative = [[torch.zeros(1, 77, 8), {}]]
    vae = fake_vae()
    pos, neg, latent = inpaint.InpaintModelConditioning().encode(positive, negative, pixels, vae, mask, True)
    assert positive[0][1] == {"strength": 0.5}  # inputs untouched
    assert pos[0][1]["strength"] == 0.5 and pos[0][0] is positive[0][0]
    concat = pos[0][1]["concat_latent_image"]
    assert torch.all(concat[:, :, :2, :2] == 0.5)  # the hole is grey
    torch.testing.assert_close(concat[:, :, 2:, 2:], vae.encode(pixels)[:, :, 2:, 2:])
    assert neg[0][1]["concat_mask"] is pos[0][1]["concat_mask"]
    torch.testing.assert_close(latent["samples"], vae.encode(pixels))  # the original picture
    assert latent["noise_mask"].shape == (1, 1, 32, 32)
    [_, _, without] = inpaint.InpaintModelConditioning().encode(positive, negative, pixels, vae, mask, False)
    assert "noise_mask" not in without
    # what the 9-channel model receives: mask then masked latent, at latent size
    ctx = CondContext(noise_shape=torch.Size([1, 4, 4, 4]), latent_image=latent["samples"])
    c_concat = inpaint_conds(dict(pos[0][1], cross_attn=pos[0][0]), ctx)["c_concat"].value
    assert c_concat.shape == (1, 5, 4, 4)
    assert c_concat[0, 0].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    torch.testing.assert_close(c_concat[:, 1:], concat)


def test_sd_4x_upscale_conditioning():
    images = torch.rand(2, 24, 16, 3)
    positive = [[torch.ones(1, 77, 8), {}]]
    pos, neg, latent = inpaint.SD_4XUpscale_Conditioning().encode(images, positive, [[torch.zeros(1, 77, 8), {}]],
                                                                  4.0, 0.3)
    assert latent["samples"].shape == (2, 4, 24, 16) and not latent["samples"].any()
    extras = pos[0][1]
    assert extras["noise_augmentation"] == 0.3 and extras["concat_image"].shape == (2, 3, 24, 16)
    torch.testing.assert_close(extras["concat_image"], images.permute(0, 3, 1, 2) * 2 - 1)
    assert neg[0][1]["concat_image"] is extras["concat_image"]
    # the x4 builder turns them into the noise level label and the noised low-res image
    ctx = CondContext(noise_shape=torch.Size([2, 4, 24, 16]), seed=5)
    inputs = x4_upscaler_conds(dict(extras, cross_attn=pos[0][0]), ctx)
    assert inputs["y"].value.tolist() == [round(350 * 0.3)]
    assert inputs["c_concat"].value.shape == (2, 3, 24, 16)
