"""Image to image, hires fix (latent upscale + second pass), the x4 upscaler."""

from __future__ import annotations

import numpy

from tests.e2e.conftest import gradient_image
from tests.e2e.prompts import img2img, ksampler, node, save, sd_base


def test_img2img_at_denoise_0_6(studio):
    source = studio.input_image("photo.png", gradient_image(128, 96))
    prompt = img2img(source, 0.6)
    [image] = studio.run(prompt)
    pixels = studio.pixels(image)
    assert pixels.shape == (128, 96, 3)
    [again] = studio.run(studio.prompt_of(image))
    assert numpy.array_equal(studio.pixels(again), pixels)
    # KSampler with denoise 0.6 runs 3 steps (the tail of a 5-step schedule).
    assert [d["max"] for e, d in studio.events if e == "progress"][:3] == [3, 3, 3]
    # The picture matters (a random tiny network's x0 guesses dominate the result, so "how near"
    # says nothing; "whether it depends" does): another input, another output.
    other = studio.input_image("other.png", gradient_image(128, 96, seed=1)[::-1].copy())
    [from_other] = studio.run(img2img(other, 0.6))
    assert not numpy.array_equal(studio.pixels(from_other), pixels)
    # denoise 0 samples nothing: the output is the input's VAE round trip whatever the seed.
    [untouched] = studio.run(img2img(source, 0.0, seed=1))
    [untouched_again] = studio.run(img2img(source, 0.0, seed=2))
    assert numpy.array_equal(studio.pixels(untouched), studio.pixels(untouched_again))


def test_hires_fix_upscales_the_latent_and_samples_again(studio):
    prompt = sd_base("tiny_sd1.safetensors")
    prompt.update({
        "5": node("EmptyLatentImage", width=96, height=64, batch_size=1),
        "6": ksampler(["1", 0], ["2", 0], ["3", 0], ["5", 0], seed=1),
        "7": node("LatentUpscale", samples=["6", 0], upscale_method="nearest-exact", width=144, height=96,
                  crop="disabled"),
        "8": ksampler(["1", 0], ["2", 0], ["3", 0], ["7", 0], seed=2, denoise=0.5),
        "9": node("VAEDecode", samples=["8", 0], vae=["1", 2]),
        "10": save(["9", 0], "hires"),
    })
    [image] = studio.run(prompt)
    assert studio.pixels(image).shape == (96, 144, 3)
    [again] = studio.run(studio.prompt_of(image))
    assert numpy.array_equal(studio.pixels(again), studio.pixels(image))


def test_sd_x4_upscaler(studio):
    source = studio.input_image("small.png", gradient_image(32, 24))
    prompt = sd_base("tiny_sd_x4.safetensors")
    prompt.update({
        "10": node("LoadImage", image=source),
        "11": node("SD_4XUpscale_Conditioning", images=["10", 0], positive=["2", 0], negative=["3", 0],
                   scale_ratio=4.0, noise_augmentation=0.2),
        "12": ksampler(["1", 0], ["11", 0], ["11", 1], ["11", 2], seed=3, cfg=4.0),
        "13": node("VAEDecode", samples=["12", 0], vae=["1", 2]),
        "14": save(["13", 0], "x4"),
    })
    [image] = studio.run(prompt)
    assert studio.pixels(image).shape == (128, 96, 3)  # 4× the input; latent 32×24, VAE ×4
    [again] = studio.run(studio.prompt_of(image))
    assert numpy.array_equal(studio.pixels(again), studio.pixels(image))
    # The noise augmentation level reaches the model (its class label): another level, another image.
    prompt["11"]["inputs"]["noise_augmentation"] = 0.8
    [other] = studio.run(prompt)
    assert not numpy.array_equal(studio.pixels(other), studio.pixels(image))
