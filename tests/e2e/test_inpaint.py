"""Inpainting (noise mask on a regular model; 9-channel model with VAEEncodeForInpaint and with
InpaintModelConditioning) and outpainting."""

from __future__ import annotations

import numpy

from tests.e2e.conftest import gradient_image
from tests.e2e.prompts import ksampler, node, save, sd_base


def _rgba_with_hole(height: int, width: int, box: tuple[int, int, int, int], seed: int = 0) -> numpy.ndarray:
    """A picture whose alpha is 0 inside ``box`` (top, left, bottom, right): LoadImage's mask is 1 there."""
    rgba = numpy.concatenate([gradient_image(height, width, seed), numpy.full((height, width, 1), 255, numpy.uint8)],
                             axis=-1)
    top, left, bottom, right = box
    rgba[top:bottom, left:right, 3] = 0
    return rgba


def _vae_encode_for_inpaint(ckpt: str, image: str, seed: int = 5) -> dict:
    prompt = sd_base(ckpt)
    prompt.update({
        "10": node("LoadImage", image=image),
        "11": node("VAEEncodeForInpaint", pixels=["10", 0], vae=["1", 2], mask=["10", 1], grow_mask_by=6),
        "12": ksampler(["1", 0], ["2", 0], ["3", 0], ["11", 0], seed=seed),
        "13": node("VAEDecode", samples=["12", 0], vae=["1", 2]),
        "14": save(["13", 0], "inpaint"),
    })
    return prompt


def _check_reproducible_and_mask_dependent(studio, prompt: dict, other_image: str) -> None:
    [image] = studio.run(prompt)
    pixels = studio.pixels(image)
    assert pixels.std() > 1.0
    [again] = studio.run(studio.prompt_of(image))
    assert numpy.array_equal(studio.pixels(again), pixels)
    prompt["10"]["inputs"]["image"] = other_image  # same picture, another hole
    [other] = studio.run(prompt)
    assert not numpy.array_equal(studio.pixels(other), pixels)


def test_inpaint_with_vae_encode_for_inpaint_on_a_regular_model(studio):
    hole = studio.input_image("hole.png", _rgba_with_hole(128, 128, (32, 32, 96, 96)))
    other = studio.input_image("hole2.png", _rgba_with_hole(128, 128, (0, 64, 64, 128)))
    _check_reproducible_and_mask_dependent(studio, _vae_encode_for_inpaint("tiny_sd1.safetensors", hole), other)


def test_inpaint_with_vae_encode_for_inpaint_on_a_9_channel_model(studio):
    hole = studio.input_image("hole.png", _rgba_with_hole(128, 128, (32, 32, 96, 96)))
    other = studio.input_image("hole2.png", _rgba_with_hole(128, 128, (0, 64, 64, 128)))
    _check_reproducible_and_mask_dependent(studio, _vae_encode_for_inpaint("tiny_sd1_inpaint.safetensors", hole),
                                           other)


def test_inpaint_model_conditioning_on_a_9_channel_model(studio):
    hole = studio.input_image("hole.png", _rgba_with_hole(128, 128, (32, 32, 96, 96)))
    other = studio.input_image("hole2.png", _rgba_with_hole(128, 128, (0, 64, 64, 128)))
    prompt = sd_base("tiny_sd1_inpaint.safetensors")
    prompt.update({
        "10": node("LoadImage", image=hole),
        "11": node("InpaintModelConditioning", positive=["2", 0], negative=["3", 0], vae=["1", 2],
                   pixels=["10", 0], mask=["10", 1], noise_mask=True),
        "12": ksampler(["1", 0], ["11", 0], ["11", 1], ["11", 2], seed=9),
        "13": node("VAEDecode", samples=["12", 0], vae=["1", 2]),
        "14": save(["13", 0], "inpaint_model"),
    })
    _check_reproducible_and_mask_dependent(studio, prompt, other)
    # Without the noise mask the whole latent is resampled: another picture.
    [masked] = studio.run(prompt)
    prompt["11"]["inputs"]["noise_mask"] = False
    prompt["10"]["inputs"]["image"] = hole
    [unmasked] = studio.run(prompt)
    assert not numpy.array_equal(studio.pixels(unmasked), studio.pixels(masked))


def test_outpaint_with_image_pad_for_outpaint(studio):
    picture = studio.input_image("picture.png", gradient_image(64, 64))
    prompt = sd_base("tiny_sd1.safetensors")
    prompt.update({
        "10": node("LoadImage", image=picture),
        "11": node("ImagePadForOutpaint", image=["10", 0], left=32, top=0, right=32, bottom=64, feathering=16),
        "12": node("VAEEncodeForInpaint", pixels=["11", 0], vae=["1", 2], mask=["11", 1], grow_mask_by=8),
        "13": ksampler(["1", 0], ["2", 0], ["3", 0], ["12", 0], seed=4),
        "14": node("VAEDecode", samples=["13", 0], vae=["1", 2]),
        "15": save(["14", 0], "outpaint"),
    })
    [image] = studio.run(prompt)
    assert studio.pixels(image).shape == (128, 128, 3)
    [again] = studio.run(studio.prompt_of(image))
    assert numpy.array_equal(studio.pixels(again), studio.pixels(image))
