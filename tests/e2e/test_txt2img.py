"""Text to image: ComfyUI's default prompt, SD2 768-v, reproducibility, batch_index."""

from __future__ import annotations

import numpy

from tests.e2e.prompts import default_txt2img


def test_default_comfyui_prompt_saves_a_png_that_reproduces_itself(studio):
    prompt = default_txt2img()
    [first] = studio.run(prompt)
    image = studio.pixels(first)
    assert image.shape == (128, 128, 3)
    assert image.std() > 1.0  # not a flat colour
    embedded = studio.prompt_of(first)
    assert embedded == prompt
    [again] = studio.run(embedded)
    assert again != first and numpy.array_equal(studio.pixels(again), image)
