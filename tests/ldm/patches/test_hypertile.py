"""ldm.patches.hypertile: tiling of self-attention queries (ComfyUI's HyperTile)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.patches.hypertile import HyperTilePatches, random_divisor
from tests.ldm.patches.conftest import run_unet


def options(patches: HyperTilePatches) -> dict:
    return {"patches": {"attn1_patch": [patches.split], "attn1_output_patch": [patches.merge]}}


def test_random_divisor_counts_tiles_of_at_least_the_tile_size():
    g = torch.Generator().manual_seed(0)
    assert random_divisor(64, 32, 1, g) == 2   # tiles of 32
    assert random_divisor(64, 16, 1, g) == 4
    assert random_divisor(16, 32, 1, g) == 1   # the whole side: one tile
    # two options (tiles of 16 or 32): ComfyUI's draw never takes the last one
    assert {random_divisor(64, 16, 2, torch.Generator().manual_seed(s)) for s in range(20)} == {4}
    assert {random_divisor(64, 8, 3, torch.Generator().manual_seed(s)) for s in range(40)} == {8, 4}


def test_split_and_merge_are_inverse_tilings():
    tiles = HyperTilePatches(tile_size=64, swap_size=1, max_depth=0, scale_depth=False)  # 8-pixel tiles
    n = torch.arange(2 * 256 * 3, dtype=torch.float32).reshape(2, 256, 3)
    extra = {"original_shape": [2, 4, 16, 16], "sigmas": torch.ones(2)}
    tiled, context, value = tiles.split(n, n, n, extra)
    assert tiled.shape == (8, 64, 3) and context is n and value is n
    grid = n.reshape(2, 16, 16, 3)
    torch.testing.assert_close(tiled[1], grid[0, :8, 8:].reshape(64, 3))  # top-right tile of image 0
    torch.testing.assert_close(tiles.merge(tiled, extra), n)


def test_tiled_queries_attend_to_runs_of_keys_as_in_comfyui():
    """The queries of tile i attend to the i-th run of consecutive keys (how ComfyUI's attention
    splits the untiled keys by the tiled batch)."""
    tiles = HyperTilePatches(tile_size=64, swap_size=1, max_depth=0, scale_depth=False)
    g = torch.Generator().manual_seed(2)
    n = torch.randn(1, 256, 8, generator=g)
    extra = {"original_shape": [1, 4, 16, 16], "sigmas": torch.ones(1)}
    q, k, v = tiles.split(n, n, n, extra)
    out = F.scaled_dot_product_attention(q, k.reshape(4, 64, 8), v.reshape(4, 64, 8))
    merged = tiles.merge(out, extra)
    grid = n.reshape(16, 16, 8)
    tile = grid[8:, :8].reshape(64, 8)  # tile 2 (bottom-left) ...
    keys = n[0, 128:192]                # ... attends to keys 128..191
    want = F.scaled_dot_product_attention(tile[None], keys[None], keys[None])[0]
    torch.testing.assert_close(merged.reshape(16, 16, 8)[8:, :8].reshape(64, 8), want)


def test_whole_map_tile_is_plain_attention_and_smaller_tiles_change_the_unet(sd1_unet):
    plain = run_unet(sd1_unet)
    whole = run_unet(sd1_unet, options(HyperTilePatches(128, 2, 0, False)))  # 16-pixel tile = the map
    torch.testing.assert_close(whole, plain)
    tiled = run_unet(sd1_unet, options(HyperTilePatches(64, 1, 0, False)))
    assert (tiled - plain).abs().max() > 1e-3 and torch.isfinite(tiled).all()
    deeper = run_unet(sd1_unet, options(HyperTilePatches(32, 1, 1, False)))  # depth 1 tiled too
    assert (deeper - tiled).abs().max() > 1e-4
