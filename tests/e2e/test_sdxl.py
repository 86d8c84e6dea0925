"""SDXL base → refiner with two KSamplerAdvanced nodes, as ComfyUI's SDXL example wires them."""

from __future__ import annotations

import numpy

from tests.e2e.prompts import node, save, sdxl_base_refiner


def test_sdxl_base_then_refiner(studio):
    prompt = sdxl_base_refiner()
    [image] = studio.run(prompt)
    pixels = studio.pixels(image)
    assert pixels.shape == (128, 128, 3) and pixels.std() > 1.0
    assert studio.prompt_of(image) == prompt
    [again] = studio.run(studio.prompt_of(image))
    assert numpy.array_equal(studio.pixels(again), pixels)
    # The refiner's steps matter: the base alone (run to the end) gives another picture.
    base_only = sdxl_base_refiner()
    base_only["10"]["inputs"].update(end_at_step=10000, return_with_leftover_noise="disable")
    base_only["17"] = node("VAEDecode", samples=["10", 0], vae=["4", 2])
    base_only["19"] = save(["17", 0], "sdxl_base")
    [base_image] = studio.run(base_only)
    assert not numpy.array_equal(studio.pixels(base_image), pixels)
    # Progress: the base reports steps 1..3 of its 3, the refiner 1 of 1.
    progress = [(d["node"], d["value"], d["max"]) for e, d in studio.events if e == "progress"][:4]
    assert progress == [("10", 1, 3), ("10", 2, 3), ("10", 3, 3), ("11", 1, 1)]
