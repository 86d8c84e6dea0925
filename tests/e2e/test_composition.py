"""Area composition, LoRA, and custom sampling against KSampler."""

from __future__ import annotations

import numpy

from tests.e2e.conftest import write_tiny_lora
from tests.e2e.prompts import default_txt2img, node


def test_area_composition(studio):
    prompt = default_txt2img(seed=21, size=128)
    prompt["10"] = node("CLIPTextEncode", text="a red balloon", clip=["4", 1])
    prompt["11"] = node("ConditioningSetArea", conditioning=["10", 0], width=64, height=64, x=64, y=0, strength=1.0)
    prompt["12"] = node("ConditioningCombine", conditioning_1=["6", 0], conditioning_2=["11", 0])
    prompt["3"]["inputs"]["positive"] = ["12", 0]
    [image] = studio.run(prompt)
    [again] = studio.run(studio.prompt_of(image))
    assert numpy.array_equal(studio.pixels(again), studio.pixels(image))
    [plain] = studio.run(default_txt2img(seed=21, size=128))
    assert not numpy.array_equal(studio.pixels(plain), studio.pixels(image))
    # The area conditioning acts where it is: moving it changes the picture.
    prompt["11"]["inputs"]["x"] = 0
    [moved] = studio.run(prompt)
    assert not numpy.array_equal(studio.pixels(moved), studio.pixels(image))


def _with_lora(strength_model: float, strength_clip: float, seed: int = 13) -> dict:
    prompt = default_txt2img(seed=seed)
    prompt["10"] = node("LoraLoader", model=["4", 0], clip=["4", 1], lora_name="tiny_lora.safetensors",
                        strength_model=strength_model, strength_clip=strength_clip)
    prompt["3"]["inputs"]["model"] = ["10", 0]
    prompt["6"]["inputs"]["clip"] = ["10", 1]
    prompt["7"]["inputs"]["clip"] = ["10", 1]
    return prompt


def test_lora_changes_the_image_and_strength_zero_equals_no_lora(studio, tiny_checkpoints):
    loras = studio.services.folders.model_roots("loras")[0]
    write_tiny_lora(loras / "tiny_lora.safetensors", tiny_checkpoints / "tiny_sd1.safetensors")
    [plain] = studio.run(default_txt2img(seed=13))
    [zero] = studio.run(_with_lora(0.0, 0.0))
    assert numpy.array_equal(studio.pixels(zero), studio.pixels(plain))
    executor = studio.executor()
    [with_lora] = studio.run(_with_lora(1.0, 1.0), executor)
    assert not numpy.array_equal(studio.pixels(with_lora), studio.pixels(plain))
    [model_only] = studio.run(_with_lora(1.0, 0.0), executor)
    assert not numpy.array_equal(studio.pixels(model_only), studio.pixels(plain))
    assert not numpy.array_equal(studio.pixels(model_only), studio.pixels(with_lora))
    # The same executor reuses the loaded checkpoint: the UNet's weights came back bit-exactly
    # after the LoRA runs, so the plain prompt gives the plain picture again.
    [plain_again] = studio.run(default_txt2img(seed=13), executor)
    assert numpy.array_equal(studio.pixels(plain_again), studio.pixels(plain))
    [from_png] = studio.run(studio.prompt_of(with_lora))
    assert numpy.array_equal(studio.pixels(from_png), studio.pixels(with_lora))


def _custom_advanced(seed: int, steps: int = 3, scheduler: str = "normal") -> dict:
    prompt = default_txt2img(seed=seed, steps=steps, scheduler=scheduler)
    del prompt["3"]
    prompt.update({
        "20": node("RandomNoise", noise_seed=seed),
        "21": node("CFGGuider", model=["4", 0], positive=["6", 0], negative=["7", 0], cfg=8.0),
        "22": node("KSamplerSelect", sampler_name="euler"),
        "23": node("BasicScheduler", model=["4", 0], scheduler=scheduler, steps=steps, denoise=1.0),
        "24": node("SamplerCustomAdvanced", noise=["20", 0], guider=["21", 0], sampler=["22", 0],
                   sigmas=["23", 0], latent_image=["5", 0]),
    })
    prompt["8"]["inputs"]["samples"] = ["24", 0]
    return prompt


def test_custom_sampling_equals_ksampler(studio):
    [reference] = studio.run(default_txt2img(seed=31, steps=3, scheduler="karras"))
    [advanced] = studio.run(_custom_advanced(31, scheduler="karras"))
    assert numpy.array_equal(studio.pixels(advanced), studio.pixels(reference))
    [from_png] = studio.run(studio.prompt_of(advanced))
    assert numpy.array_equal(studio.pixels(from_png), studio.pixels(advanced))
    custom = _custom_advanced(31, scheduler="karras")
    custom["24"] = node("SamplerCustom", model=["4", 0], add_noise=True, noise_seed=31, cfg=8.0,
                        positive=["6", 0], negative=["7", 0], sampler=["22", 0], sigmas=["23", 0],
                        latent_image=["5", 0])
    [simple] = studio.run(custom)
    assert numpy.array_equal(studio.pixels(simple), studio.pixels(reference))
    # denoised_output (the last x0 prediction) decodes too; euler's last step to sigma 0 lands on
    # it up to rounding (x - (x - x0)/σ·σ), so at most one 8-bit level apart.
    custom["8"]["inputs"]["samples"] = ["24", 1]
    [denoised] = studio.run(custom)
    difference = numpy.abs(studio.pixels(denoised).astype(int) - studio.pixels(reference).astype(int))
    assert difference.max() <= 1
