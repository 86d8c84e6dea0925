"""ldm.patches.deep_shrink: Kohya Deep Shrink inside its sigma range, the plain UNet outside."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.patches.deep_shrink import deep_shrink_patches
from tests.ldm.patches.conftest import run_unet


def options(block: int, factor: float, after_skip: bool = True) -> dict:
    shrink, restore = deep_shrink_patches(block, factor, sigma_start=10.0, sigma_end=2.0,
                                          downscale_method="bicubic", upscale_method="bicubic")
    where = "input_block_patch_after_skip" if after_skip else "input_block_patch"
    return {"patches": {where: [shrink], "output_block_patch": [restore]}}


def test_shrinks_only_the_chosen_block_inside_the_range():
    shrink, restore = deep_shrink_patches(3, 2.0, 10.0, 2.0, "bicubic", "nearest-exact")
    h = torch.randn(1, 4, 16, 16)
    inside = {"block": ("input", 3), "sigmas": torch.tensor([5.0])}
    torch.testing.assert_close(shrink(h, inside), F.interpolate(h, size=(8, 8), mode="bicubic"))
    for outside in ({"block": ("input", 2), "sigmas": torch.tensor([5.0])},
                    {"block": ("input", 3), "sigmas": torch.tensor([11.0])},
                    {"block": ("input", 3), "sigmas": torch.tensor([2.0])}):  # sigma_end excluded
        assert shrink(h, outside) is h
    small, skip = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 16, 16)
    grown, same_skip = restore(small, skip, {})
    assert same_skip is skip
    torch.testing.assert_close(grown, F.interpolate(small, size=(16, 16), mode="nearest-exact"))


def test_unet_changes_inside_the_range_only(sd1_unet):
    plain = run_unet(sd1_unet, sigma=5.0)
    for after_skip in (True, False):
        shrunk = run_unet(sd1_unet, options(1, 2.0, after_skip), sigma=5.0)
        assert shrunk.shape == plain.shape and (shrunk - plain).abs().max() > 1e-3
        torch.testing.assert_close(run_unet(sd1_unet, options(1, 2.0, after_skip), sigma=20.0),
                                   run_unet(sd1_unet, sigma=20.0))
    torch.testing.assert_close(run_unet(sd1_unet, options(1, 1.0), sigma=5.0), plain)  # factor 1: no-op
