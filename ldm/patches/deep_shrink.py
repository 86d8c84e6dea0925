"""Kohya's "Deep Shrink" (ComfyUI's PatchModelAddDownscale): while sigma is inside a range, the
feature map after one input block is shrunk by a factor, so the deeper blocks compose at the
resolution the model was trained at; the decoder resizes it back to each skip's size.

``block_number`` counts input blocks as ComfyUI's ``transformer_options["block"]`` does. The
range is ``sigma_start >= sigma > sigma_end`` (ComfyUI's current comparison).
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from ldm.imaging.operations import resample


def deep_shrink_patches(block_number: int, downscale_factor: float, sigma_start: float, sigma_end: float,
                        downscale_method: str, upscale_method: str) -> tuple[Callable, Callable]:
    """``(input_block_patch, output_block_patch)``: shrink after ``block_number`` within the
    sigma range; grow ``h`` back to the skip's size wherever they differ."""

    def shrink(h: Tensor, transformer_options: dict) -> Tensor:
        if transformer_options["block"][1] != block_number:
            return h
        sigma = float(transformer_options["sigmas"][0])
        if sigma_start >= sigma > sigma_end:
            width = round(h.shape[-1] / downscale_factor)
            height = round(h.shape[-2] / downscale_factor)
            h = resample(h, width, height, downscale_method)
        return h

    def restore(h: Tensor, skip: Tensor, transformer_options: dict) -> tuple[Tensor, Tensor]:
        if h.shape[2] != skip.shape[2]:
            h = resample(h, skip.shape[-1], skip.shape[-2], upscale_method)
        return h, skip

    return shrink, restore
